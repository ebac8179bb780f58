import { useRef, useState } from 'react';

import { ErrorBox, Loading } from '../../components/Status';
import { age, num } from '../../lib/format';
import { formatRoute, navigate, type Route } from '../../lib/route';
import { useNow } from '../../lib/useNow';
import { useFleetAlerts } from '../alerts/api';
import { type FleetPages, useFleetCounts, useFleetPages } from './api';
import { COLUMNS, alertCounts, fleetRows, fleetSort, lastSeenMs } from './rows';

/** The counts the page shows, in order (alerting is beside a status, not part of the total). */
const COUNTED = [
  ['total', 'Vehicles'],
  ['driving', 'Driving'],
  ['charging', 'Charging'],
  ['parked', 'Parked'],
  ['silent', 'Silent'],
  ['alerting', 'Alerting'],
] as const;

/**
 * The fleet's vehicles, a page at a time, searched by id prefix and shown by
 * status (a count's button) on the server. Sorting by SoC, hottest cell or
 * last message orders the whole fleet on the server (when no search or status
 * narrows it); the shown rows sort by any column. Search, status and sort are
 * kept in the URL.
 */
export function Fleet({ route }: { route: Extract<Route, { page: 'fleet' }> }) {
  const prefix = route.filter.trim();
  const sort = !prefix && !route.status ? fleetSort(route.sort) : null;
  const search = `${route.status ?? ''}:${sort ?? ''}:${prefix}`;
  const [shown, setShown] = useState({ search, pages: 1 });
  // A new search or status starts again at its first page.
  const pages = shown.search === search ? shown.pages : 1;
  const fleet = useFleetPages({ prefix, status: route.status, sort }, pages);
  // While another search, status or order loads, the rows shown stay (marked as refreshing).
  const lastShown = useRef<FleetPages | undefined>(undefined);
  if (fleet.data) lastShown.current = fleet.data;
  const shownPages = fleet.data ?? lastShown.current;
  const counts = useFleetCounts();
  const byStatus = counts.data;
  const alerts = useFleetAlerts();
  const now = useNow();

  const alerting = alertCounts(alerts.data?.alerts ?? []);
  const rows = fleetRows(shownPages?.vehicles ?? [], alerting, route.sort);
  const more = Boolean(shownPages?.next);
  const sortBy = (key: string) => {
    const next = route.sort === key ? `-${key}` : key;
    navigate({ ...route, sort: next }, true);
  };

  return (
    <section aria-labelledby="fleet-title">
      <div className="toolbar">
        <h1 id="fleet-title">Fleet</h1>
        <input
          type="search"
          placeholder="Vehicle id starts with…"
          aria-label="Search vehicles by id prefix"
          value={route.filter}
          onChange={(e) => navigate({ ...route, filter: e.target.value }, true)}
        />
        <span className="muted" aria-live="polite">
          {shownPages ? `${rows.length} ${rows.length === 1 ? 'vehicle' : 'vehicles'} shown${more ? ', more to show' : ''}` : ''}
          {fleet.loading && shownPages ? ' · refreshing' : ''}
        </span>
      </div>
      {byStatus && (
        <dl className="fleet-counts" aria-label="Vehicles by status">
          {COUNTED.map(([key, label]) => {
            const only = key === 'total' ? null : key;
            return (
              <div key={key}>
                <dt>{label}</dt>
                <dd>
                  <button
                    type="button"
                    aria-pressed={route.status === only}
                    aria-label={only ? `Show only ${label.toLowerCase()} vehicles` : 'Show every vehicle'}
                    onClick={() => navigate({ ...route, status: route.status === only ? null : only }, true)}
                  >
                    {byStatus[key]}
                  </button>
                </dd>
              </div>
            );
          })}
        </dl>
      )}
      {counts.error && <ErrorBox error={counts.error} what="the fleet's counts" />}
      {fleet.error && <ErrorBox error={fleet.error} what="the fleet" />}
      {alerts.error && <ErrorBox error={alerts.error} what="recent alerts" />}
      {!shownPages && fleet.loading && <Loading what="the fleet" />}
      {shownPages && (
        <div className="table-wrap">
          <table className="fleet">
            <thead>
              <tr>
                {COLUMNS.map((c) => {
                  const sorted = route.sort === c.key ? 'ascending' : route.sort === `-${c.key}` ? 'descending' : 'none';
                  return (
                    <th key={c.key} aria-sort={sorted} scope="col">
                      <button type="button" onClick={() => sortBy(c.key)}>
                        {c.label}
                        {c.unit ? ` (${c.unit})` : ''}
                        <span aria-hidden="true">{sorted === 'ascending' ? ' ▲' : sorted === 'descending' ? ' ▼' : ''}</span>
                      </button>
                    </th>
                  );
                })}
              </tr>
            </thead>
            <tbody>
              {rows.map((v) => {
                const n = alerting.get(v.vehicle_id) ?? 0;
                return (
                  <tr key={v.vehicle_id}>
                    <th scope="row">
                      <a href={formatRoute({ page: 'vehicle', id: v.vehicle_id, signals: [], preset: '1h', from: null, to: null })}>
                        {v.vehicle_id}
                      </a>
                    </th>
                    {COLUMNS.slice(1, 6).map((c) => (
                      <td key={c.key} className="num">
                        {num(v[c.key as keyof typeof v] as number, c.decimals)}
                      </td>
                    ))}
                    <td title={new Date(lastSeenMs(v)).toISOString()}>{age(lastSeenMs(v), now)} ago</td>
                    <td>
                      {n > 0 ? (
                        <a className="badge alert" href="#/alerts" aria-label={`${n} recent alerts`}>
                          {n}
                        </a>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {rows.length === 0 && <p className="muted">No vehicle matches.</p>}
          {more && (
            <button type="button" onClick={() => setShown({ search, pages: pages + 1 })} disabled={fleet.loading}>
              Show more vehicles
            </button>
          )}
        </div>
      )}
    </section>
  );
}
