// The fleet's latest states (GET /vehicles), a page at a time: the server
// lists them in id order and searches by id prefix, so the table reads what
// it shows, never the whole fleet.

import type { VehicleState } from '../../api/types';
import { http } from '../../lib/http';
import { FLEET_COUNTS, fleetKey } from '../../lib/keys';
import { useLiveStatus } from '../../lib/live';
import { useResource } from '../../lib/store';

/** How often the shown pages are read while the live stream is down (it pushes otherwise). */
const POLL_MS = 5_000;

/** Vehicles a page of the table holds. */
export const PAGE_SIZE = 50;

/** The table's first pages, and the cursor to the page after them (null: none). */
export interface FleetPages {
  vehicles: VehicleState[];
  next: string | null;
}

/** The first `pages` pages of the vehicles whose id starts with `prefix` (empty: every vehicle). */
export async function getFleetPages(prefix: string, pages: number): Promise<FleetPages> {
  const vehicles: VehicleState[] = [];
  let after: string | undefined;
  for (let read = 0; read < pages; read++) {
    const page = await http.get('/vehicles', { query: { limit: PAGE_SIZE, after, prefix: prefix || undefined } });
    vehicles.push(...page.vehicles);
    after = page.next ?? undefined;
    if (!after) break;
  }
  return { vehicles, next: after ?? null };
}

export function useFleetPages(prefix: string, pages: number) {
  const live = useLiveStatus() === 'live';
  return useResource(fleetKey(prefix, pages), () => getFleetPages(prefix, pages), live ? undefined : POLL_MS);
}

/** How many vehicles of the caller's scope are driving, charging, parked or silent. */
export function getFleetCounts() {
  return http.get('/fleet/counts');
}

/** The counts, read again every poll: the live stream does not push them. */
export function useFleetCounts() {
  return useResource(FLEET_COUNTS, getFleetCounts, POLL_MS);
}
