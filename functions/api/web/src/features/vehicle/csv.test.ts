import { describe, expect, it } from 'vitest';

import { csvField, parseCsv, seriesCsv } from './csv';

describe('seriesCsv', () => {
  it('writes one row per point that parses back to the same values', () => {
    const csv = seriesCsv([
      {
        message_name: 'BMS_PackStatus',
        signal_name: 'PackCurrent',
        unit: 'A',
        source_points: 2,
        downsampled: false,
        points: [
          { ts_us: 1_700_000_000_000_000, value: -12.5 },
          { ts_us: 1_700_000_000_100_000, value: 0.1 + 0.2 },
        ],
      },
    ]);
    const rows = parseCsv(csv);
    expect(rows[0]).toEqual(['message', 'signal', 'unit', 'ts_us', 'time', 'value']);
    expect(rows[1]).toEqual(['BMS_PackStatus', 'PackCurrent', 'A', '1700000000000000', '2023-11-14T22:13:20.000Z', '-12.5']);
    expect(Number(rows[2]![5])).toBe(0.1 + 0.2);
    expect(rows).toHaveLength(3);
  });

  it('quotes what would break a row', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(parseCsv(`${csvField('a,"b"\nc')},d\r\n`)).toEqual([['a,"b"\nc', 'd']]);
  });
});
