// The store keys of the answers the live stream patches: the features load
// those answers under these keys, and live.ts updates them in place.

/** Every vehicle's latest state (GET /vehicles, all pages). */
export const VEHICLES = 'vehicles';

/** The fleet's recent alerts (GET /alerts). */
export const FLEET_ALERTS = 'alerts:fleet';

/** One vehicle's latest state (GET /vehicles/{id}). */
export const vehicleKey = (id: string): string => `vehicle:${id}`;

/** One vehicle's alerts (GET /vehicles/{id}/alerts). */
export const vehicleAlertsKey = (id: string): string => `alerts:${id}`;
