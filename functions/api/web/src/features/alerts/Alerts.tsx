import { useState } from 'react';

import type { Alert } from '../../api/types';
import { ErrorBox, Loading } from '../../components/Status';
import { getFleetAlerts, useFleetAlerts } from './api';
import { AlertRows } from './AlertRows';

/** Older pages the reader asked for, and where the next one starts. */
interface Older {
  alerts: Alert[];
  next: string | null;
  loading: boolean;
  error?: Error;
}

/** The fleet's alert feed, newest first: the newest page kept fresh, older pages on request. */
export function Alerts() {
  const alerts = useFleetAlerts();
  const [older, setOlder] = useState<Older | null>(null);
  const next = older ? older.next : (alerts.data?.next ?? null);
  const showOlder = async () => {
    if (!next) return;
    setOlder((o) => ({ alerts: o?.alerts ?? [], next, loading: true }));
    try {
      const page = await getFleetAlerts(next);
      setOlder((o) => ({ alerts: [...(o?.alerts ?? []), ...page.alerts], next: page.next ?? null, loading: false }));
    } catch (error) {
      const failed = error instanceof Error ? error : new Error(String(error));
      setOlder((o) => ({ alerts: o?.alerts ?? [], next, loading: false, error: failed }));
    }
  };
  const shown = alerts.data ? withOlder(alerts.data.alerts, older?.alerts ?? []) : [];
  return (
    <section aria-labelledby="alerts-title">
      <div className="toolbar">
        <h1 id="alerts-title">Alerts</h1>
        <span className="muted">every vehicle's, newest first</span>
      </div>
      {alerts.error && <ErrorBox error={alerts.error} what="alerts" />}
      {!alerts.data && alerts.loading && <Loading what="alerts" />}
      {alerts.data && <AlertRows alerts={shown} showVehicle />}
      {older?.error && <ErrorBox error={older.error} what="older alerts" />}
      {alerts.data && next && (
        <button type="button" onClick={showOlder} disabled={older?.loading}>
          {older?.loading ? 'Loading older alerts…' : 'Show older alerts'}
        </button>
      )}
    </section>
  );
}

/** The newest page, then the older pages' alerts it does not hold (the newest page moves as alerts arrive). */
function withOlder(newest: readonly Alert[], older: readonly Alert[]): Alert[] {
  const key = (a: Alert) => `${a.vehicle_id}#${a.ts_us}#${a.rule}`;
  const seen = new Set(newest.map(key));
  return [...newest, ...older.filter((a) => !seen.has(key(a)))];
}
