import { ErrorBox, Loading } from '../../components/Status';
import { useFleetAlerts } from './api';
import { AlertRows } from './AlertRows';

/** The fleet's alert log, newest first. */
export function Alerts() {
  const alerts = useFleetAlerts();
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
