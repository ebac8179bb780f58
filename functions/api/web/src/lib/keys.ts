// The store keys of the answers the live stream patches: the features load
// those answers under these keys, and live.ts updates them in place.

/** The fleet table's answers (GET /vehicles): every key of them starts with this. */
export const FLEET_PAGES = 'vehicles:';

/** What a fleet table asks for: ids starting with `prefix`, of `status`, in the API's `sort` (empty: any, any, by id). */
export interface FleetKeyQuery {
  prefix: string;
  status: string;
  sort: string;
}

/** The first `pages` pages of the vehicles `query` asks for. */
export const fleetKey = ({ prefix, status, sort }: FleetKeyQuery, pages: number): string =>
  `${FLEET_PAGES}${pages}:${sort}:${status}:${prefix}`;

/** The query a {@link fleetKey} was made with. */
export function fleetQueryOfKey(key: string): FleetKeyQuery {
  const [sort = '', status = '', ...prefix] = key.slice(key.indexOf(':', FLEET_PAGES.length) + 1).split(':');
  return { prefix: prefix.join(':'), status, sort };
}

/** How many vehicles are doing what (GET /fleet/counts). */
export const FLEET_COUNTS = 'fleet:counts';

/** The fleet's recent alerts (GET /alerts). */
export const FLEET_ALERTS = 'alerts:fleet';

/** One vehicle's latest state (GET /vehicles/{id}). */
export const vehicleKey = (id: string): string => `vehicle:${id}`;

/** One vehicle's alerts (GET /vehicles/{id}/alerts). */
export const vehicleAlertsKey = (id: string): string => `alerts:${id}`;
