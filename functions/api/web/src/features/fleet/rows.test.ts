import { describe, expect, it } from 'vitest';

import type { VehicleState } from '../../api/types';
import { alertCounts, fleetRows, fleetSort } from './rows';

const vehicle = (id: string, soc: number, receivedMs: number): VehicleState => ({
  v: 1,
  vehicle_id: id,
  ts: new Date(receivedMs).toISOString(),
  seq: 1,
  soc_pct: soc,
  pack_voltage_v: 380,
  pack_current_a: 0,
  cell_voltage_min_v: 3.9,
  cell_voltage_max_v: 4,
  cell_temp_min_c: 25,
  cell_temp_max_c: 30,
  speed_kph: 0,
  received_at_ms: receivedMs,
  updated_at_ms: receivedMs,
});

describe('fleetRows', () => {
  const fleet = [vehicle('veh-002', 40, 2_000), vehicle('veh-001', 80, 1_000), vehicle('veh-010', 60, 3_000)];
  const ids = (rows: VehicleState[]) => rows.map((v) => v.vehicle_id);

  it('sorts by any column, either way', () => {
    expect(ids(fleetRows(fleet, new Map(), 'vehicle_id'))).toEqual(['veh-001', 'veh-002', 'veh-010']);
    expect(ids(fleetRows(fleet, new Map(), 'soc_pct'))).toEqual(['veh-002', 'veh-010', 'veh-001']);
    expect(ids(fleetRows(fleet, new Map(), '-soc_pct'))).toEqual(['veh-001', 'veh-010', 'veh-002']);
    // "age" ascending: the freshest first.
    expect(ids(fleetRows(fleet, new Map(), 'age'))).toEqual(['veh-010', 'veh-002', 'veh-001']);
  });

  it('sorts by alerts', () => {
    const counts = alertCounts([{ vehicle_id: 'veh-002' }, { vehicle_id: 'veh-002' }, { vehicle_id: 'veh-010' }] as never);
    expect(counts.get('veh-002')).toBe(2);
    expect(ids(fleetRows(fleet, counts, '-alerts'))).toEqual(['veh-002', 'veh-010', 'veh-001']);
  });

  it('does not reorder the list it was given', () => {
    fleetRows(fleet, new Map(), 'soc_pct');
    expect(ids(fleet)).toEqual(['veh-002', 'veh-001', 'veh-010']);
  });
});

describe('fleetSort', () => {
  it("names the API's order for the columns it sorts the fleet by, and none for the others", () => {
    expect(fleetSort('soc_pct')).toBe('soc_pct');
    expect(fleetSort('-cell_temp_max_c')).toBe('-cell_temp_max_c');
    expect(fleetSort('age'), 'the newest message first').toBe('-last_heard');
    expect(fleetSort('-age')).toBe('last_heard');
    expect(fleetSort('pack_voltage_v')).toBeNull();
    expect(fleetSort('')).toBeNull();
  });
});
