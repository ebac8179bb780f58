import { describe, expect, it } from 'vitest';

import type { Trip } from '../../api/types';
import { duration, tripRange } from './trips';

const trip = (startS: number, endS: number): Trip => ({
  start: '',
  end: '',
  start_us: startS * 1e6,
  end_us: endS * 1e6,
  duration_s: endS - startS,
  samples: endS - startS + 1,
  distance_km: 1,
  energy_out_kwh: 1,
  energy_in_kwh: 0,
  soc_start_pct: 80,
  soc_end_pct: 79,
  cell_temp_max_c: 30,
  alerts: [],
});

describe('trips', () => {
  it('say how long they took in the largest unit that reads well', () => {
    expect(duration(42.4)).toBe('42 s');
    expect(duration(12 * 60 + 10)).toBe('12 min');
    expect(duration(3900)).toBe('1 h 05 min');
  });

  it('open a range that holds the whole trip with a margin', () => {
    const short = tripRange(trip(1000, 1100));
    expect(short).toEqual({ fromMs: 970_000, toMs: 1_130_000 });
    const long = tripRange(trip(0, 7200));
    // A twentieth of two hours each side: 6 minutes.
    expect(long).toEqual({ fromMs: -360_000, toMs: 7_560_000 });
  });
});
