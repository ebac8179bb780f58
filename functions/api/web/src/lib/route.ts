// The page state lives in the URL (the hash, so no console path can shadow
// an API route): a copied link reproduces the view.

import { useEffect, useState } from 'react';

export type Preset = '1h' | '1d' | '1w';
export const PRESETS: Record<Preset, { label: string; ms: number }> = {
  '1h': { label: 'Last hour', ms: 3_600_000 },
  '1d': { label: 'Last day', ms: 86_400_000 },
  '1w': { label: 'Last week', ms: 7 * 86_400_000 },
};

/** The statuses the fleet page can show alone, and the vehicles alerting whatever their status. */
export const FLEET_STATUSES = ['driving', 'charging', 'parked', 'silent', 'alerting'] as const;
export type FleetStatus = (typeof FLEET_STATUSES)[number];

const fleetStatus = (s: string | null): FleetStatus | null => FLEET_STATUSES.find((f) => f === s) ?? null;

export type Route =
  | { page: 'fleet'; filter: string; sort: string; status: FleetStatus | null }
  | { page: 'vehicle'; id: string; signals: string[]; preset: Preset | null; from: string | null; to: string | null }
  | { page: 'alerts' }
  | { page: 'stations' }
  | { page: 'station'; id: string; field: string; preset: Preset | null; from: string | null; to: string | null }
  | { page: 'docs' };

/** What a station's chart shows first. */
export const DEFAULT_STATION_FIELD = 'batteries_available';

export const MAX_CHARTS = 8;

export function parseRoute(pathname: string, hash: string): Route {
  if (pathname.replace(/\/+$/, '') === '/docs') return { page: 'docs' };
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'vehicles' && parts[1]) {
    const preset = params.get('range');
    const from = params.get('from');
    const to = params.get('to');
    return {
      page: 'vehicle',
      id: parts[1],
      signals: (params.get('signals') ?? '').split(',').filter(Boolean).slice(0, MAX_CHARTS),
      preset: from && to ? null : preset && preset in PRESETS ? (preset as Preset) : '1h',
      from: from && to ? from : null,
      to: from && to ? to : null,
    };
  }
  if (parts[0] === 'stations' && parts[1]) {
    const preset = params.get('range');
    const from = params.get('from');
    const to = params.get('to');
    return {
      page: 'station',
      id: parts[1],
      field: params.get('field') || DEFAULT_STATION_FIELD,
      preset: from && to ? null : preset && preset in PRESETS ? (preset as Preset) : '1d',
      from: from && to ? from : null,
      to: from && to ? to : null,
    };
  }
  if (parts[0] === 'stations') return { page: 'stations' };
  if (parts[0] === 'alerts') return { page: 'alerts' };
  if (parts[0] === 'docs') return { page: 'docs' };
  return {
    page: 'fleet',
    filter: params.get('q') ?? '',
    sort: params.get('sort') ?? 'vehicle_id',
    status: fleetStatus(params.get('status')),
  };
}

export function formatRoute(route: Route): string {
  const query = (entries: [string, string | null][]): string => {
    const params = new URLSearchParams();
    for (const [k, v] of entries) if (v) params.set(k, v);
    const s = params.toString().replace(/%2C/g, ',');
    return s ? `?${s}` : '';
  };
  switch (route.page) {
    case 'fleet':
      return `#/${query([
        ['q', route.filter],
        ['status', route.status],
        ['sort', route.sort === 'vehicle_id' ? null : route.sort],
      ])}`;
    case 'vehicle':
      return `#/vehicles/${encodeURIComponent(route.id)}${query([
        ['signals', route.signals.join(',')],
        ['range', route.from ? null : route.preset],
        ['from', route.from],
        ['to', route.to],
      ])}`;
    case 'alerts':
      return '#/alerts';
    case 'stations':
      return '#/stations';
    case 'station':
      return `#/stations/${encodeURIComponent(route.id)}${query([
        ['field', route.field === DEFAULT_STATION_FIELD ? null : route.field],
        ['range', route.from ? null : route.preset],
        ['from', route.from],
        ['to', route.to],
      ])}`;
    case 'docs':
      return '/docs';
  }
}

/** The range a vehicle's or a station's route shows, in ms since the epoch. */
export function rangeOf(
  route: { preset: Preset | null; from: string | null; to: string | null },
  nowMs: number,
): { fromMs: number; toMs: number } {
  if (route.from && route.to) {
    const fromMs = Date.parse(route.from);
    const toMs = Date.parse(route.to);
    if (Number.isFinite(fromMs) && Number.isFinite(toMs) && fromMs < toMs) return { fromMs, toMs };
  }
  const span = PRESETS[route.preset ?? '1h'].ms;
  // Rounded to the minute so a re-render does not ask for a new range.
  const toMs = Math.ceil(nowMs / 60_000) * 60_000;
  return { fromMs: toMs - span, toMs };
}

function current(): Route {
  return parseRoute(window.location.pathname, window.location.hash);
}

export function navigate(route: Route, replace = false): void {
  const target = formatRoute(route);
  const url = target.startsWith('#') ? `/${target}` : target;
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  window.dispatchEvent(new Event('canopy:navigate'));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    window.addEventListener('hashchange', update);
    window.addEventListener('popstate', update);
    window.addEventListener('canopy:navigate', update);
    return () => {
      window.removeEventListener('hashchange', update);
      window.removeEventListener('popstate', update);
      window.removeEventListener('canopy:navigate', update);
    };
  }, []);
  return route;
}
