// The fleet's alert log (GET /alerts).

import type { Alert } from '../../api/types';
import { http } from '../../lib/http';
import { FLEET_ALERTS } from '../../lib/keys';
import { useLiveStatus } from '../../lib/live';
import { useResource } from '../../lib/store';

/** How often the fleet's alerts are read while the live stream is down (it pushes them otherwise). */
const POLL_MS = 15_000;

/** The fleet's most recent alerts, newest first. */
export function getFleetAlerts(): Promise<{ alerts: Alert[] }> {
  return http.get('/alerts', { query: { limit: 100 } });
}

export function useFleetAlerts() {
  const live = useLiveStatus() === 'live';
  return useResource(FLEET_ALERTS, getFleetAlerts, live ? undefined : POLL_MS);
}
