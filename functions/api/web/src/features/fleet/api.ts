// The fleet's latest states (GET /vehicles).

import type { VehicleState } from '../../api/types';
import { http } from '../../lib/http';
import { VEHICLES } from '../../lib/keys';
import { useLiveStatus } from '../../lib/live';
import { allPages } from '../../lib/paging';
import { useResource } from '../../lib/store';

/** How often the fleet is read while the live stream is down (it pushes otherwise). */
const POLL_MS = 5_000;

/** Every vehicle's latest state, every page of the listing. */
export function getVehicles(): Promise<VehicleState[]> {
  return allPages(async (after) => {
    const page = await http.get('/vehicles', { query: { limit: 100, after } });
    return { items: page.vehicles, next: page.next };
  });
}

export function useVehicles() {
  const live = useLiveStatus() === 'live';
  return useResource(VEHICLES, getVehicles, live ? undefined : POLL_MS);
}
