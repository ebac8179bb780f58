import { useEffect, useState } from 'react';

import { allVehicles, type Alert } from '../api';
import { ErrorBox, Loading } from '../components/Status';
import { useConsole } from '../context';
import { COLUMNS, alertCounts, fleetRows, lastSeenMs } from '../lib/fleet';
import { age, num } from '../lib/format';
import { useLiveStatus } from '../live';
import { formatRoute, navigate, type Route } from '../route';
import { useResource } from '../store';

/** How often the fleet is read while the live stream is down (it pushes otherwise). */
const POLL_MS = 5_000;

export function useRecentAlerts() {
  const { client } = useConsole();
  const live = useLiveStatus() === 'live';
  return useResource('alerts:fleet', () => client.get<{ alerts: Alert[] }>('/alerts?limit=100'), live ? undefined : 15_000);
}

export function Fleet({ route }: { route: Extract<Route, { page: 'fleet' }> }) {
  const { client } = useConsole();
  const live = useLiveStatus() === 'live';
  const vehicles = useResource('vehicles', () => allVehicles(client), live ? undefined : POLL_MS);
  const alerts = useRecentAlerts();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, []);

  const counts = alertCounts(alerts.data?.alerts ?? []);
  const rows = fleetRows(vehicles.data ?? [], counts, route.filter, route.sort);
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
          placeholder="Filter vehicles"
          aria-label="Filter vehicles by id"
          value={route.filter}
          onChange={(e) => navigate({ ...route, filter: e.target.value }, true)}
        />
        <span className="muted" aria-live="polite">
          {vehicles.data ? `${rows.length} of ${vehicles.data.length} vehicles` : ''}
          {vehicles.loading && vehicles.data ? ' · refreshing' : ''}
        </span>
      </div>
      {vehicles.error && <ErrorBox error={vehicles.error} what="the fleet" />}
      {alerts.error && <ErrorBox error={alerts.error} what="recent alerts" />}
      {!vehicles.data && vehicles.loading && <Loading what="the fleet" />}
      {vehicles.data && (
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
                const n = counts.get(v.vehicle_id) ?? 0;
                return (
                  <tr key={v.vehicle_id} data-vehicle={v.vehicle_id}>
                    <th scope="row">
                      <a href={formatRoute({ page: 'vehicle', id: v.vehicle_id, signals: [], preset: '1h', from: null, to: null })}>
                        {v.vehicle_id}
                      </a>
                    </th>
                    {COLUMNS.slice(1, 6).map((c) => (
                      <td key={c.key} data-key={c.key} className="num">
                        {num(v[c.key as keyof typeof v] as number, c.decimals)}
                      </td>
                    ))}
                    <td data-key="age" title={new Date(lastSeenMs(v)).toISOString()}>
                      {age(lastSeenMs(v), now)} ago
                    </td>
                    <td data-key="alerts">
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
        </div>
      )}
    </section>
  );
}
