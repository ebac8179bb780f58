import { describe, expect, it } from 'vitest';

import type { Alert, VehicleState } from '../api/types';
import { FLEET_ALERTS, fleetKey, vehicleAlertsKey, vehicleKey } from './keys';
import { apply, liveUrl, withAlert, withState } from './live';
import { clear, peek, refresh } from './store';

const state = (id: string, ts: string, seq: number): VehicleState => ({
  v: 1,
  vehicle_id: id,
  ts,
  seq,
  soc_pct: 80,
  pack_voltage_v: 380,
  pack_current_a: 10,
  cell_voltage_min_v: 3.9,
  cell_voltage_max_v: 3.95,
  cell_temp_min_c: 25,
  cell_temp_max_c: 30,
  speed_kph: 50,
  received_at_ms: null,
  updated_at_ms: 1,
});

const alert = (id: string, ts_us: number): Alert => ({
  vehicle_id: id,
  rule: 'over-temperature',
  severity: 'critical',
  measure: 'cell_temp_max_c',
  value: 61,
  comparison: '>',
  threshold: 60,
  unit: '°C',
  ts: '',
  ts_us,
  seq: 1,
});

describe('the live stream', () => {
  it('opens the configured URL in AWS and this server’s /live elsewhere, with the token', () => {
    expect(liveUrl({ auth: null }, { protocol: 'http:', host: '127.0.0.1:8080' }, null)).toBe('ws://127.0.0.1:8080/live');
    expect(liveUrl({ auth: null, live_url: 'wss://x.example/live' }, { protocol: 'https:', host: 'h' }, 'a b')).toBe(
      'wss://x.example/live?token=a%20b',
    );
  });

  it('keeps the newer state of a vehicle and each alert once', () => {
    const list = [state('veh-1', '2026-01-01T00:00:01Z', 1)];
    expect(withState(list, state('veh-1', '2026-01-01T00:00:00Z', 0))).toBe(list);
    expect(withState(list, state('veh-1', '2026-01-01T00:00:02Z', 2))[0]?.seq).toBe(2);
    expect(withState(list, state('veh-2', '2026-01-01T00:00:00Z', 5))).toHaveLength(2);
    const alerts = [alert('veh-1', 5)];
    expect(withAlert(alerts, alert('veh-1', 5))).toBe(alerts);
    expect(withAlert(alerts, alert('veh-1', 6))[0]?.ts_us).toBe(6);
  });

  it('patches the answers pages hold, and only those', async () => {
    clear();
    const whole = fleetKey({ prefix: '', status: '', sort: '' }, 1);
    const search = fleetKey({ prefix: 'veh-1', status: '', sort: '' }, 1);
    const paged = fleetKey({ prefix: '', status: '', sort: '' }, 2);
    const driving = fleetKey({ prefix: '', status: 'driving', sort: '' }, 1);
    await refresh(whole, async () => ({ vehicles: [state('veh-1', '2026-01-01T00:00:01Z', 1)], next: null }));
    await refresh(search, async () => ({ vehicles: [state('veh-1', '2026-01-01T00:00:01Z', 1)], next: null }));
    await refresh(paged, async () => ({ vehicles: [state('veh-1', '2026-01-01T00:00:01Z', 1)], next: 'cursor' }));
    await refresh(driving, async () => ({ vehicles: [], next: null }));
    await refresh(FLEET_ALERTS, async () => ({ alerts: [alert('veh-1', 5)] }));
    apply({
      type: 'update',
      states: [state('veh-1', '2026-01-01T00:00:03Z', 3), state('veh-2', '2026-01-01T00:00:03Z', 7)],
      alerts: [alert('veh-1', 9)],
    });
    const shown = (key: string) =>
      (peek<{ vehicles: VehicleState[] }>(key)?.vehicles ?? []).map((v) => [v.vehicle_id, v.seq]);
    expect(shown(whole)).toEqual([
      ['veh-1', 3],
      ['veh-2', 7],
    ]);
    expect(shown(search), 'a search lists only what it matches').toEqual([['veh-1', 3]]);
    expect(shown(paged), "pages before the last keep the server's pages").toEqual([['veh-1', 3]]);
    expect(shown(driving), 'a list of one status takes no newcomer').toEqual([]);
    expect(peek<{ alerts: Alert[] }>(FLEET_ALERTS)?.alerts.map((a) => a.ts_us)).toEqual([9, 5]);
    expect(peek(vehicleKey('veh-2'))).toBeUndefined();
    expect(peek(vehicleAlertsKey('veh-1'))).toBeUndefined();
  });
});
