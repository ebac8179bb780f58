// The live stream (docs/live-protocol.md): one WebSocket for the whole
// console, subscribed to the fleet. Pushed states and alerts are patched
// into the server state pages read (store.ts), so a page redraws without a
// request; while the socket is down, pages poll as before.

import { useSyncExternalStore } from 'react';

import type { Alert, ConsoleConfig, VehicleState } from '../api/types';
import { FLEET_ALERTS, FLEET_PAGES, fleetQueryOfKey, vehicleAlertsKey, vehicleKey } from './keys';
import { patch, patchEach } from './store';

export type LiveStatus = 'connecting' | 'live' | 'down';

interface Update {
  type: 'update';
  states: VehicleState[];
  alerts: Alert[];
}

let status: LiveStatus = 'down';
const listeners = new Set<() => void>();

function setStatus(next: LiveStatus): void {
  if (next === status) return;
  status = next;
  for (const l of listeners) l();
}

/** The socket's state, for pages that poll only while it is down. */
export function useLiveStatus(): LiveStatus {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => status,
  );
}

/** The stream's URL: the configured one (AWS), else this server's /live. */
export function liveUrl(config: ConsoleConfig, location: { protocol: string; host: string }, token: string | null): string {
  const base = config.live_url ?? `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/live`;
  return token ? `${base}?token=${encodeURIComponent(token)}` : base;
}

/**
 * A list of shown vehicles with `state` in it: the newer of the two, by
 * `ts`. A vehicle not shown joins only a list that holds every vehicle it
 * could (`complete`): a paged list keeps the server's pages.
 */
export function withState(list: VehicleState[], state: VehicleState, complete = true): VehicleState[] {
  const i = list.findIndex((v) => v.vehicle_id === state.vehicle_id);
  const held = list[i];
  if (!held) return complete ? [...list, state] : list;
  if (Date.parse(held.ts) >= Date.parse(state.ts)) return list;
  const next = list.slice();
  next[i] = state;
  return next;
}

/** Alerts with `alert` first, once. */
export function withAlert(alerts: Alert[], alert: Alert): Alert[] {
  if (alerts.some((a) => a.vehicle_id === alert.vehicle_id && a.ts_us === alert.ts_us && a.rule === alert.rule)) return alerts;
  return [alert, ...alerts];
}

/** Applies one pushed update to the answers pages hold. */
export function apply(update: Update): void {
  for (const state of update.states) {
    patchEach<{ vehicles: VehicleState[]; next: string | null }>(FLEET_PAGES, (held, key) => {
      // A pushed state says nothing of silence: a list of one status takes no newcomer.
      const { prefix, status } = fleetQueryOfKey(key);
      const complete = held.next === null && !status && state.vehicle_id.startsWith(prefix);
      const vehicles = withState(held.vehicles, state, complete);
      return vehicles === held.vehicles ? held : { ...held, vehicles };
    });
    patch<VehicleState>(vehicleKey(state.vehicle_id), (held) =>
      Date.parse(held.ts) >= Date.parse(state.ts) ? held : state,
    );
  }
  for (const alert of update.alerts) {
    patch<{ alerts: Alert[] }>(FLEET_ALERTS, (a) => ({ ...a, alerts: withAlert(a.alerts, alert) }));
    if (alert.vehicle_id) {
      patch<{ alerts: Alert[] }>(vehicleAlertsKey(alert.vehicle_id), (a) => ({ ...a, alerts: withAlert(a.alerts, alert) }));
    }
  }
}

/** Opens the stream and keeps it open (reconnecting with backoff); returns a stop function. */
export function startLive(config: ConsoleConfig, token: () => string | null): () => void {
  let socket: WebSocket | null = null;
  let stopped = false;
  let retry = 1_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const open = () => {
    if (stopped) return;
    setStatus('connecting');
    socket = new WebSocket(liveUrl(config, window.location, token()));
    socket.onopen = () => {
      retry = 1_000;
      // No snapshot: the pages read their answers again as the stream comes up (their poll stops then).
      socket?.send(JSON.stringify({ action: 'subscribe', fleet: true, snapshot: false }));
    };
    socket.onmessage = (event) => {
      let message: { type?: string };
      try {
        message = JSON.parse(String(event.data)) as { type?: string };
      } catch {
        return;
      }
      if (message.type === 'subscribed') setStatus('live');
      if (message.type === 'update') apply(message as Update);
    };
    socket.onclose = () => {
      setStatus('down');
      socket = null;
      if (!stopped) {
        timer = setTimeout(open, retry);
        retry = Math.min(retry * 2, 30_000);
      }
    };
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    socket?.close();
  };
}
