// Answers as the API sends them, for component tests.

import { vi } from 'vitest';

import type { Alert, StationState, Trip, VehicleState } from '../api/types';

/** The fixtures' now. */
export const NOW_MS = Date.parse('2026-12-02T10:00:00Z');

/** Stops the clock at NOW_MS, so that "… ago" reads the same however slow the test; timers still run. */
export function stopClock(): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW_MS);
}

export function vehicle(id: string, patch: Partial<VehicleState> = {}): VehicleState {
  return {
    v: 1,
    vehicle_id: id,
    ts: new Date(NOW_MS - 5_000).toISOString(),
    seq: 1,
    soc_pct: 80.04,
    pack_voltage_v: 371.26,
    pack_current_a: -12.5,
    cell_voltage_min_v: 3.9,
    cell_voltage_max_v: 3.95,
    cell_temp_min_c: 25,
    cell_temp_max_c: 31.2,
    speed_kph: 52.4,
    received_at_ms: NOW_MS - 4_000,
    updated_at_ms: NOW_MS - 4_000,
    ...patch,
  };
}

export function alert(vehicleId: string, tsUs: number, patch: Partial<Alert> = {}): Alert {
  return {
    vehicle_id: vehicleId,
    rule: 'over-temperature',
    severity: 'critical',
    measure: 'cell_temp_max_c',
    value: 61.5,
    comparison: '>',
    threshold: 60,
    unit: '°C',
    ts: new Date(tsUs / 1000).toISOString(),
    ts_us: tsUs,
    seq: 7,
    ...patch,
  };
}

export function station(id: string, available: number, slots: number): StationState {
  return {
    kind: 'station',
    station_id: id,
    ts: new Date(NOW_MS - 20_000).toISOString(),
    seq: 3,
    slots,
    batteries_available: available,
    charging: slots - available,
    faulted: 0,
    swaps_today: 12,
    temperature_c: 21.5,
    grid_power_kw: 40.25,
    slot_soc_pct: Array.from({ length: slots }, (_, i) => (i < available ? 100 : 42)),
    slot_temp_c: Array.from({ length: slots }, () => 27),
    received_at_ms: NOW_MS - 20_000,
    updated_at_ms: NOW_MS - 20_000,
  };
}

export function trip(startS: number, endS: number, patch: Partial<Trip> = {}): Trip {
  return {
    start: new Date(startS * 1000).toISOString(),
    end: new Date(endS * 1000).toISOString(),
    start_us: startS * 1e6,
    end_us: endS * 1e6,
    duration_s: endS - startS,
    samples: endS - startS + 1,
    distance_km: 11.74,
    energy_out_kwh: 2.5,
    energy_in_kwh: 0.25,
    soc_start_pct: 82,
    soc_end_pct: 79.5,
    cell_temp_max_c: 33,
    alerts: [],
    ...patch,
  };
}
