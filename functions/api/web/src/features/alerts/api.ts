// The fleet's alert feed (GET /alerts).

import type { Alert } from '../../api/types';
import { http } from '../../lib/http';
import { FLEET_ALERTS } from '../../lib/keys';
import { useLiveStatus } from '../../lib/live';
import { useResource } from '../../lib/store';

/** How often the fleet's alerts are read while the live stream is down (it pushes them otherwise). */
const POLL_MS = 15_000;

/** Alerts a page of the feed holds. */
const PAGE = 100;

export interface FeedPage {
  alerts: Alert[];
  /** Where the next (older) page starts; null on the last. */
  next?: string | null;
}

/** A page of the fleet's alerts, newest first: the newest, or those after `after` (a page's `next`). */
export function getFleetAlerts(after?: string): Promise<FeedPage> {
  return http.get('/alerts', { query: { limit: PAGE, after } });
}

/** The feed's newest page, kept fresh. */
export function useFleetAlerts() {
  const live = useLiveStatus() === 'live';
  return useResource(FLEET_ALERTS, () => getFleetAlerts(), live ? undefined : POLL_MS);
}
