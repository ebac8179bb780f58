// The fleet's latest states (GET /vehicles), a page at a time: the server
// lists them in id order or sorted, and searches by id prefix and status, so
// the table reads what it shows, never the whole fleet.

import type { VehicleState } from '../../api/types';
import { http } from '../../lib/http';
import { FLEET_COUNTS, fleetKey } from '../../lib/keys';
import { useLiveStatus } from '../../lib/live';
import type { FleetStatus } from '../../lib/route';
import type { FleetSort } from './rows';
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

/**
 * Which vehicles the table shows: those whose id starts with `prefix` (empty: any), of `status` (null: any),
 * in the API's order `sort` (null: by id; the API sorts only the whole fleet).
 */
export interface FleetQuery {
  prefix: string;
  status: FleetStatus | null;
  sort: FleetSort | null;
}

/** The first `pages` pages of the vehicles `query` asks for. */
export async function getFleetPages({ prefix, status, sort }: FleetQuery, pages: number): Promise<FleetPages> {
  const vehicles: VehicleState[] = [];
  let after: string | undefined;
  for (let read = 0; read < pages; read++) {
    const query = { limit: PAGE_SIZE, after, prefix: prefix || undefined, status: status ?? undefined, sort: sort ?? undefined };
    const page = await http.get('/vehicles', { query });
    vehicles.push(...page.vehicles);
    after = page.next ?? undefined;
    if (!after) break;
  }
  return { vehicles, next: after ?? null };
}

export function useFleetPages(query: FleetQuery, pages: number) {
  const live = useLiveStatus() === 'live';
  const key = fleetKey({ prefix: query.prefix, status: query.status ?? '', sort: query.sort ?? '' }, pages);
  return useResource(key, () => getFleetPages(query, pages), live ? undefined : POLL_MS);
}

/** How many vehicles of the caller's scope are driving, charging, parked or silent, and how many alerting. */
export function getFleetCounts() {
  return http.get('/fleet/counts');
}

/** The counts, read again every poll: the live stream does not push them. */
export function useFleetCounts() {
  return useResource(FLEET_COUNTS, getFleetCounts, POLL_MS);
}
