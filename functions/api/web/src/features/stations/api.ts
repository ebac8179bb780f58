// The battery-swap stations: GET /stations, /stations/{id},
// /stations/{id}/alerts and /stations/{id}/history/{field}, the routes the
// server makes from kinds/station.toml.

import type { Alert, FieldHistory, StationField, StationState } from '../../api/types';
import { http } from '../../lib/http';
import { allPages } from '../../lib/paging';
import { useResource } from '../../lib/store';

/** Stations publish every 30 s and have no live stream: read every 5 s. */
const STATUS_POLL_MS = 5_000;

const ALERTS_POLL_MS = 15_000;

/** Every station's latest status, every page of the listing. */
export function getStations(): Promise<StationState[]> {
  return allPages(async (after) => {
    const page = await http.get('/stations', { query: { limit: 100, after } });
    return { items: page.stations, next: page.next };
  });
}

export function getStation(id: string): Promise<StationState> {
  return http.get('/stations/{id}', { path: { id } });
}

export function getStationAlerts(id: string): Promise<{ alerts: Alert[] }> {
  return http.get('/stations/{id}/alerts', { path: { id }, query: { limit: 100 } });
}

/** A number field over a range, reduced to at most `maxPoints`, with exact statistics. */
export function getFieldHistory(
  id: string,
  field: StationField,
  range: { fromMs: number; toMs: number },
  maxPoints: number,
): Promise<FieldHistory> {
  return http.get('/stations/{id}/history/{field}', {
    path: { id, field },
    query: { from: new Date(range.fromMs).toISOString(), to: new Date(range.toMs).toISOString(), max_points: maxPoints },
  });
}

export function useStations() {
  return useResource('stations', getStations, STATUS_POLL_MS);
}

export function useStation(id: string) {
  return useResource(`station:${id}`, () => getStation(id), STATUS_POLL_MS);
}

export function useStationAlerts(id: string) {
  return useResource(`station-alerts:${id}`, () => getStationAlerts(id), ALERTS_POLL_MS);
}

export function useFieldHistory(id: string, field: StationField, range: { fromMs: number; toMs: number }, maxPoints: number) {
  return useResource(`station-history:${id}:${field}:${range.fromMs}:${range.toMs}`, () =>
    getFieldHistory(id, field, range, maxPoints),
  );
}
