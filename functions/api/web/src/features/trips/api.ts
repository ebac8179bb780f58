// A vehicle's trips (GET /vehicles/{id}/trips).

import type { Trip } from '../../api/types';
import { http } from '../../lib/http';
import { useResource } from '../../lib/store';

/** How far back the trip list reaches. */
export const TRIPS_MS = 7 * 86_400_000;

/** The vehicle's trips between `fromMs` and `toMs`, oldest first. */
export async function getTrips(id: string, fromMs: number, toMs: number): Promise<{ trips: Trip[] }> {
  return http.get('/vehicles/{id}/trips', {
    path: { id },
    query: { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() },
  });
}

/** The last week's trips, to the minute (so a re-render asks for nothing new). */
export function useTrips(id: string) {
  const toMs = Math.ceil(Date.now() / 60_000) * 60_000;
  return useResource(`trips:${id}:${toMs}`, () => getTrips(id, toMs - TRIPS_MS, toMs));
}
