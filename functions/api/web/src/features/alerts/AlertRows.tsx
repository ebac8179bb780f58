import type { Alert } from '../../api/types';
import { num, when } from '../../lib/format';
import { formatRoute } from '../../lib/route';

/** An alert log as a table, a vehicle's or a device's; `showVehicle` adds a column linking each vehicle. */
export function AlertRows({ alerts, showVehicle }: { alerts: readonly Alert[]; showVehicle: boolean }) {
  if (alerts.length === 0) return <p className="muted">No alerts.</p>;
  const source = (a: Alert) => a.vehicle_id ?? `${a.kind}/${a.device_id}`;
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
            <tr key={`${source(a)}/${a.ts_us}/${a.rule}`}>
              <td>{when(a.ts_us / 1000)}</td>
              {showVehicle && (
                <td>
                  {a.vehicle_id ? (
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
