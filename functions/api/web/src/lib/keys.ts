// The store keys of the answers the live stream patches: the features load
// those answers under these keys, and live.ts updates them in place.

/** The fleet table's answers (GET /vehicles): every key of them starts with this. */
export const FLEET_PAGES = 'vehicles:';

/** The first `pages` pages of the vehicles with `status` (any: empty) whose id starts with `prefix`. */
export const fleetKey = (prefix: string, status: string, pages: number): string =>
  `${FLEET_PAGES}${pages}:${status}:${prefix}`;

/** The id prefix and status a {@link fleetKey} was made with. */
export function fleetQueryOfKey(key: string): { prefix: string; status: string } {
  const [status = '', ...prefix] = key.slice(key.indexOf(':', FLEET_PAGES.length) + 1).split(':');
  return { prefix: prefix.join(':'), status };
}

/** How many vehicles are doing what (GET /fleet/counts). */
export const FLEET_COUNTS = 'fleet:counts';

/** The fleet's recent alerts (GET /alerts). */
export const FLEET_ALERTS = 'alerts:fleet';

/** One vehicle's latest state (GET /vehicles/{id}). */
export const vehicleKey = (id: string): string => `vehicle:${id}`;

/** One vehicle's alerts (GET /vehicles/{id}/alerts). */
export const vehicleAlertsKey = (id: string): string => `alerts:${id}`;
