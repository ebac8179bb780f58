import { describe, expect, it } from 'vitest';

import type { StationState } from '../../api/types';
import { availability, byUrgency, slots } from './availability';

const station = (id: string, available: number, total: number): StationState => ({
  kind: 'station',
  station_id: id,
  ts: '2026-12-02T08:00:00.000Z',
  seq: 1,
  slots: total,
  batteries_available: available,
  charging: total - available,
  faulted: 0,
  swaps_today: 0,
  temperature_c: 20,
  grid_power_kw: 10,
  slot_soc_pct: Array.from({ length: total }, (_, i) => (i < available ? 100 : 40)),
  slot_temp_c: Array.from({ length: total }, () => 25),
  received_at_ms: null,
  updated_at_ms: 0,
});

describe('stations', () => {
  it('grade availability', () => {
    expect(availability(station('a', 0, 8))).toBe('empty');
    expect(availability(station('a', 2, 8))).toBe('low');
    expect(availability(station('a', 3, 8))).toBe('ok');
  });
  it('list the empty and the scarce first', () => {
    const order = byUrgency([station('c', 6, 8), station('b', 0, 2), station('a', 2, 8), station('d', 6, 8)]);
    expect(order.map((s) => s.station_id)).toEqual(['b', 'a', 'c', 'd']);
  });
  it('show each slot with its charge and temperature', () => {
    const s = { slot_soc_pct: [100, 94.9], slot_temp_c: [25] };
    expect(slots(s)).toEqual([
      { index: 0, soc_pct: 100, temp_c: 25, charged: true },
      { index: 1, soc_pct: 94.9, temp_c: Number.NaN, charged: false },
    ]);
  });
});
