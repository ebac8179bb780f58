import { describe, expect, it } from 'vitest';

import { statsOf } from './stats';

describe('statsOf', () => {
  it('agrees with the two-pass formulas', () => {
    const values = Array.from({ length: 10_001 }, (_, i) => 1e6 + Math.sin(i) * 3 + (i % 7));
    const points = values.map((value, i) => ({ ts_us: i, value }));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
    const s = statsOf(points)!;
    expect(s.count).toBe(values.length);
    expect(s.min).toBe(Math.min(...values));
    expect(s.max).toBe(Math.max(...values));
    expect(Math.abs(s.mean - mean) / mean).toBeLessThan(1e-12);
    expect(Math.abs(s.stddev - Math.sqrt(variance)) / Math.sqrt(variance)).toBeLessThan(1e-9);
  });

  it('skips what is not a number and has nothing to say about nothing', () => {
    expect(statsOf([])).toBeNull();
    expect(statsOf([{ ts_us: 1, value: NaN }])).toBeNull();
    expect(statsOf([{ ts_us: 1, value: 5 }, { ts_us: 2, value: NaN }])).toEqual({ count: 1, min: 5, max: 5, mean: 5, stddev: 0 });
  });
});
