import type { Alert, VehicleState } from '../../api/types';

export interface Column {
  key: keyof VehicleState | 'age' | 'alerts';
  label: string;
  unit?: string;
  decimals?: number;
}

export const COLUMNS: Column[] = [
  { key: 'vehicle_id', label: 'Vehicle' },
  { key: 'soc_pct', label: 'SoC', unit: '%', decimals: 1 },
  { key: 'pack_voltage_v', label: 'Pack voltage', unit: 'V', decimals: 1 },
  { key: 'pack_current_a', label: 'Pack current', unit: 'A', decimals: 1 },
  { key: 'cell_temp_max_c', label: 'Hottest cell', unit: '°C', decimals: 1 },
  { key: 'speed_kph', label: 'Speed', unit: 'km/h', decimals: 0 },
  { key: 'age', label: 'Last message' },
  { key: 'alerts', label: 'Alerts' },
];

/** The orders the API sorts the whole fleet in (GET /vehicles?sort=). */
export type FleetSort = 'soc_pct' | '-soc_pct' | 'cell_temp_max_c' | '-cell_temp_max_c' | 'last_heard' | '-last_heard';

/**
 * The API's order for the table's sort (a column key, `-` first for descending), when the API
 * sorts by that column; null for the columns only the shown rows sort by. The newest message
 * first (Last message, ascending by age) is the latest heard first.
 */
export function fleetSort(sort: string): FleetSort | null {
  const descending = sort.startsWith('-');
  const key = descending ? sort.slice(1) : sort;
  if (key === 'soc_pct' || key === 'cell_temp_max_c') return descending ? `-${key}` : key;
  if (key === 'age') return descending ? 'last_heard' : '-last_heard';
  return null;
}

/** When the vehicle's latest message reached the cloud (its own clock as a fallback). */
export function lastSeenMs(v: VehicleState): number {
  return v.received_at_ms ?? Date.parse(v.ts);
}

/** Alerts per vehicle in `alerts`. */
export function alertCounts(alerts: readonly Alert[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { vehicle_id: id } of alerts) if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** The rows to show, sorted by `sort` (a column key, `-` first for descending). */
export function fleetRows(vehicles: readonly VehicleState[], counts: ReadonlyMap<string, number>, sort: string): VehicleState[] {
  const descending = sort.startsWith('-');
  const key = descending ? sort.slice(1) : sort;
  const value = (v: VehicleState): number | string => {
    if (key === 'age') return -lastSeenMs(v);
    if (key === 'alerts') return counts.get(v.vehicle_id) ?? 0;
    const fields: Record<string, unknown> = v;
    const x = fields[key];
    return typeof x === 'number' || typeof x === 'string' ? x : '';
  };
  const rows = vehicles.slice();
  rows.sort((a, b) => {
    const x = value(a);
    const y = value(b);
    const order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return (descending ? -order : order) || a.vehicle_id.localeCompare(b.vehicle_id);
  });
  return rows;
}
