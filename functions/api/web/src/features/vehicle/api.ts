// One vehicle: its latest state (GET /vehicles/{id}), the signals of its DBC
// (GET /vehicles/{id}/signals), their history (POST /vehicles/{id}/query)
// and its alerts (GET /vehicles/{id}/alerts).

import type { Alert, CatalogEntry, History, SignalRef, VehicleState } from '../../api/types';
import { http } from '../../lib/http';
import { vehicleAlertsKey, vehicleKey } from '../../lib/keys';
import { useLiveStatus } from '../../lib/live';
import { signalKey } from '../../lib/signals';
import { useResource } from '../../lib/store';

/** How often the latest state is read while the live stream is down (it pushes otherwise). */
const POLL_MS = 10_000;

export function getVehicle(id: string): Promise<VehicleState> {
  return http.get('/vehicles/{id}', { path: { id } });
}

export function getVehicleSignals(id: string): Promise<{ signals: CatalogEntry[] }> {
  return http.get('/vehicles/{id}/signals', { path: { id } });
}

export function getVehicleAlerts(id: string): Promise<{ alerts: Alert[] }> {
  return http.get('/vehicles/{id}/alerts', { path: { id }, query: { limit: 100 } });
}

/** Several signals over a range, each reduced to at most `maxPoints`, with exact statistics. */
export function querySignalHistory(
  id: string,
  signals: SignalRef[],
  range: { fromMs: number; toMs: number },
  maxPoints: number,
): Promise<History> {
  return http.post('/vehicles/{id}/query', {
    path: { id },
    body: {
      signals,
      start_time: new Date(range.fromMs).toISOString(),
      end_time: new Date(range.toMs).toISOString(),
      max_points: maxPoints,
    },
  });
}

export function useVehicle(id: string) {
  const live = useLiveStatus() === 'live';
  return useResource(vehicleKey(id), () => getVehicle(id), live ? undefined : POLL_MS);
}

export function useVehicleSignals(id: string) {
  return useResource(`signals:${id}`, () => getVehicleSignals(id));
}

export function useVehicleAlerts(id: string) {
  return useResource(vehicleAlertsKey(id), () => getVehicleAlerts(id));
}

/** The history of `signals` over the range; nothing is asked while no signal is chosen. */
export function useSignalHistory(id: string, signals: SignalRef[], range: { fromMs: number; toMs: number }, maxPoints: number) {
  const key = signals.length > 0 ? `history:${id}:${signals.map(signalKey).join(',')}:${range.fromMs}:${range.toMs}:${maxPoints}` : null;
  return useResource(key, () => querySignalHistory(id, signals, range, maxPoints));
}
