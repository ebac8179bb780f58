import { useState } from 'react';

import { toLocalInput } from '../../lib/format';

/** An absolute range typed in: from and to, in local time, applied by "Show". */
export function RangeInputs({ fromMs, toMs, onApply }: { fromMs: number; toMs: number; onApply: (from: number, to: number) => void }) {
  const [from, setFrom] = useState(toLocalInput(fromMs));
  const [to, setTo] = useState(toLocalInput(toMs));
  const valid = Date.parse(from) < Date.parse(to);
  return (
    <form
      className="absolute"
      onSubmit={(e) => {
        e.preventDefault();
        if (valid) onApply(Date.parse(from), Date.parse(to));
      }}
    >
      <label>
        From <input type="datetime-local" step="1" value={from} onChange={(e) => setFrom(e.target.value)} />
      </label>
      <label>
        To <input type="datetime-local" step="1" value={to} onChange={(e) => setTo(e.target.value)} />
      </label>
      <button type="submit" disabled={!valid}>
        Show
      </button>
    </form>
  );
}
