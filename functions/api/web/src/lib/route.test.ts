import { describe, expect, it } from 'vitest';

import { formatRoute, parseRoute, rangeOf, type Route } from './route';

describe('routes', () => {
  it('round-trip through the URL', () => {
    const routes: Route[] = [
      { page: 'fleet', filter: '', sort: 'vehicle_id', status: null },
      { page: 'fleet', filter: 'veh-0', sort: '-soc_pct', status: 'silent' },
      { page: 'vehicle', id: 'veh-001', signals: ['BMS_PackStatus.PackCurrent', 'A.B'], preset: '1d', from: null, to: null },
      { page: 'vehicle', id: 'veh-001', signals: [], preset: null, from: '2026-11-27T10:00:00.000Z', to: '2026-11-27T11:00:00.000Z' },
      { page: 'alerts' },
      { page: 'stations' },
      { page: 'station', id: 'st-001', field: 'batteries_available', preset: '1d', from: null, to: null },
      { page: 'station', id: 'st-002', field: 'grid_power_kw', preset: null, from: '2026-11-27T10:00:00.000Z', to: '2026-11-27T11:00:00.000Z' },
    ];
    for (const route of routes) {
      const url = formatRoute(route);
      expect(parseRoute('/', url)).toEqual(route);
    }
    expect(parseRoute('/docs', '')).toEqual({ page: 'docs' });
  });

  it('fall back to something sensible on a hand-edited URL', () => {
    expect(parseRoute('/', '#/nowhere')).toEqual({ page: 'fleet', filter: '', sort: 'vehicle_id', status: null });
    const r = parseRoute('/', '#/vehicles/v1?range=1y&signals=' + Array.from({ length: 12 }, (_, i) => `M.S${i}`).join(','));
    expect(r).toMatchObject({ page: 'vehicle', preset: '1h' });
    expect(r.page === 'vehicle' && r.signals.length).toBe(8);
  });

  it('give a preset range ending at the next minute and an absolute one as is', () => {
    const now = Date.parse('2026-11-27T10:00:30Z');
    const preset = rangeOf({ preset: '1h', from: null, to: null }, now);
    expect(preset).toEqual({ fromMs: Date.parse('2026-11-27T09:01:00Z'), toMs: Date.parse('2026-11-27T10:01:00Z') });
    const absolute = rangeOf(
      { preset: null, from: '2026-11-27T08:00:00Z', to: '2026-11-27T08:30:00Z' },
      now,
    );
    expect(absolute.toMs - absolute.fromMs).toBe(1_800_000);
  });
});
