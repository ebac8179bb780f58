// What the Stations pages show of a station's status, as pure functions.

import type { StationField, StationState } from '../../api/types';

/** State of charge a battery counts as charged from (the simulator's and the kiosk's 95 %). */
export const CHARGED_PCT = 95;

export type Availability = 'empty' | 'low' | 'ok';

/** At a glance: no charged battery, a quarter of the slots or fewer, or more. */
export function availability(s: Pick<StationState, 'batteries_available' | 'slots'>): Availability {
  if (s.batteries_available <= 0) return 'empty';
  return s.batteries_available * 4 <= s.slots ? 'low' : 'ok';
}

export interface SlotView {
  index: number;
  soc_pct: number;
  temp_c: number;
  charged: boolean;
}

/** Each slot's battery, from the status's per-slot lists. */
export function slots(s: Pick<StationState, 'slot_soc_pct' | 'slot_temp_c'>): SlotView[] {
  return s.slot_soc_pct.map((soc, index) => ({
    index,
    soc_pct: soc,
    temp_c: s.slot_temp_c[index] ?? Number.NaN,
    charged: soc >= CHARGED_PCT,
  }));
}

/** Empty stations first, then the least available, then by id. */
export function byUrgency(stations: readonly StationState[]): StationState[] {
  const rank: Record<Availability, number> = { empty: 0, low: 1, ok: 2 };
  return [...stations].sort(
    (a, b) =>
      rank[availability(a)] - rank[availability(b)] ||
      a.batteries_available / a.slots - b.batteries_available / b.slots ||
      a.station_id.localeCompare(b.station_id),
  );
}

/** The number fields a station's history can chart, with their labels. */
export const CHARTABLE: readonly { field: StationField; label: string; unit: string }[] = [
  { field: 'batteries_available', label: 'Charged batteries', unit: '' },
  { field: 'charging', label: 'Charging', unit: '' },
  { field: 'faulted', label: 'Faulted slots', unit: '' },
  { field: 'swaps_today', label: 'Swaps today', unit: '' },
  { field: 'temperature_c', label: 'Station temperature', unit: '°C' },
  { field: 'grid_power_kw', label: 'Grid power', unit: 'kW' },
];
