// How the trip list reads and what a trip opens, as pure functions.

import type { Trip } from '../../api/types';

/** How long a trip took: "42 s", "12 min", "1 h 05 min". */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** The chart range that shows a trip: the trip with a little margin each side. */
export function tripRange(trip: Pick<Trip, 'start_us' | 'end_us'>): { fromMs: number; toMs: number } {
  const margin = Math.max(30_000, (trip.end_us - trip.start_us) / 1000 / 20);
  return { fromMs: Math.floor(trip.start_us / 1000 - margin), toMs: Math.ceil(trip.end_us / 1000 + margin) };
}
