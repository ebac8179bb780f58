import { useState } from 'react';

import { download, when } from '../../lib/format';
import { http } from '../../lib/http';

/** The formats GET /vehicles/{id}/raw writes, as the API names them. */
const FORMATS = { candump: 'candump', asc: 'Vector ASC', blf: 'Vector BLF', csv: 'CSV' } as const;
type Format = keyof typeof FORMATS;

/**
 * "Export raw": the vehicle's raw CAN frames of the charts' window, as a log
 * for CANalyzer, SavvyCAN or python-can. The API answers at most 4 MiB of
 * log and a day of frames; when it cut the window, the line beside the
 * button says where the log ends, and the next export starts there.
 */
export function RawExport({ id, fromMs, toMs }: { id: string; fromMs: number; toMs: number }) {
  const [format, setFormat] = useState<Format>('candump');
  const [busy, setBusy] = useState(false);
  const [said, setSaid] = useState<string | null>(null);
  const [next, setNext] = useState<{ window: string; fromMs: number } | null>(null);
  const windowKey = `${fromMs}-${toMs}`;
  const startMs = next?.window === windowKey ? next.fromMs : fromMs;

  async function run() {
    setBusy(true);
    setSaid(null);
    try {
      const file = await http.file('/vehicles/{id}/raw', {
        path: { id },
        query: { from: new Date(startMs).toISOString(), to: new Date(toMs).toISOString(), format },
      });
      download(file.blob, file.name ?? `${id}.${format}`);
      const frames = file.headers.get('Canopy-Frames') ?? '?';
      const cut = file.headers.get('Canopy-Next-From');
      if (cut) {
        const at = Date.parse(cut);
        setNext({ window: windowKey, fromMs: at });
        setSaid(`${frames} frames; the log ends before ${when(at)}: export again for the rest`);
      } else {
        setNext(null);
        setSaid(`${frames} frames`);
      }
    } catch (e) {
      setSaid(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <span className="raw-export">
      <select aria-label="Raw log format" value={format} onChange={(e) => setFormat(e.target.value as Format)}>
        {(Object.keys(FORMATS) as Format[]).map((f) => (
          <option key={f} value={f}>
            {FORMATS[f]}
          </option>
        ))}
      </select>
      <button
        type="button"
        disabled={busy}
        title={`Raw CAN frames from ${when(startMs)}`}
        onClick={() => void run()}
      >
        {startMs > fromMs ? 'Export raw (next)' : 'Export raw'}
      </button>
      {said && (
        <span className="muted" role="status">
          {said}
        </span>
      )}
    </span>
  );
}
