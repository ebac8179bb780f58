import { ErrorBox, Loading } from '../../components/Status';
import { age, num } from '../../lib/format';
import { formatRoute, navigate, type Route } from '../../lib/route';
import { useNow } from '../../lib/useNow';
import { useFleetAlerts } from '../alerts/api';
import { useVehicles } from './api';
import { COLUMNS, alertCounts, fleetRows, lastSeenMs } from './rows';

/** Every vehicle's latest state in a table that sorts and filters; the choice is kept in the URL. */
export function Fleet({ route }: { route: Extract<Route, { page: 'fleet' }> }) {
  const vehicles = useVehicles();
  const alerts = useFleetAlerts();
  const now = useNow();

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
        </div>
      )}
    </section>
  );
}
