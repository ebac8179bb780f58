import type { Alert, DeviceAlert } from '../api';
import { ErrorBox, Loading } from '../components/Status';
import { num, when } from '../lib/format';
import { formatRoute } from '../route';
import { useRecentAlerts } from './Fleet';

/** An alert log as a table, a vehicle's or a device's; `showVehicle` adds a column linking each vehicle. */
export function AlertRows({ alerts, showVehicle }: { alerts: readonly (Alert | DeviceAlert)[]; showVehicle: boolean }) {
  if (alerts.length === 0) return <p className="muted">No alerts.</p>;
  const source = (a: Alert | DeviceAlert) => ('vehicle_id' in a ? a.vehicle_id : `${a.kind}/${a.device_id}`);
  return (
    <div className="table-wrap">
      <table className="alerts">
        <thead>
          <tr>
            <th scope="col">Time</th>
            {showVehicle && <th scope="col">Vehicle</th>}
            <th scope="col">Rule</th>
            <th scope="col">Severity</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {alerts.map((a) => (
            <tr key={`${source(a)}/${a.ts_us}/${a.rule}`} data-alert={a.rule} data-vehicle={'vehicle_id' in a ? a.vehicle_id : undefined}>
              <td>{when(a.ts_us / 1000)}</td>
              {showVehicle && (
                <td>
                  {'vehicle_id' in a ? (
                    <a href={formatRoute({ page: 'vehicle', id: a.vehicle_id, signals: [], preset: '1h', from: null, to: null })}>
                      {a.vehicle_id}
                    </a>
                  ) : (
                    source(a)
                  )}
                </td>
              )}
              <td>{a.rule}</td>
              <td>
                <span className={`badge ${a.severity}`}>{a.severity}</span>
              </td>
              <td className="num">
                {a.measure} {num(a.value, 2)} {a.unit} {a.comparison} {num(a.threshold, 2)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Alerts() {
  const alerts = useRecentAlerts();
  return (
    <section aria-labelledby="alerts-title">
      <div className="toolbar">
        <h1 id="alerts-title">Alerts</h1>
        <span className="muted">the fleet's most recent, newest first</span>
      </div>
      {alerts.error && <ErrorBox error={alerts.error} what="alerts" />}
      {!alerts.data && alerts.loading && <Loading what="alerts" />}
      {alerts.data && <AlertRows alerts={alerts.data.alerts} showVehicle />}
    </section>
  );
}
