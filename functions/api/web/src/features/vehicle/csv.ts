import type { Series } from '../../api/types';

/** A field as RFC 4180 wants it: quoted when it holds a comma, a quote or a line break. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/**
 * The points shown, one row per point (the signals' times differ after
 * downsampling): signal, unit, the time in µs and in ISO 8601, the value.
 */
export function seriesCsv(series: readonly Series[]): string {
  const rows = ['message,signal,unit,ts_us,time,value'];
  for (const s of series) {
    for (const p of s.points) {
      rows.push(
        [s.message_name, s.signal_name, s.unit, String(p.ts_us), new Date(p.ts_us / 1000).toISOString(), String(p.value)]
          .map(csvField)
          .join(','),
      );
    }
  }
  return rows.join('\r\n') + '\r\n';
}

/** Parses what seriesCsv writes (for tests and for checking an export). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field.replace(/\r$/, ''));
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}
