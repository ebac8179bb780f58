import { useEffect, useState } from 'react';

import { allStations } from '../api';
import { ErrorBox, Loading } from '../components/Status';
import { useConsole } from '../context';
import { age, num } from '../lib/format';
import { availability, byUrgency } from '../lib/stations';
import { DEFAULT_STATION_FIELD, formatRoute } from '../route';
import { useResource } from '../store';

/** Stations publish every 30 s and have no live stream: read every 5 s. */
export const STATIONS_POLL_MS = 5_000;

const LABEL = { empty: 'no charged battery', low: 'few charged', ok: 'available' } as const;

/** Availability at a glance: one card per station, the empty ones first. */
export function Stations() {
  const { client } = useConsole();
  const stations = useResource('stations', () => allStations(client), STATIONS_POLL_MS);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, []);
  const list = byUrgency(stations.data ?? []);
  const empty = list.filter((s) => availability(s) === 'empty').length;
  return (
    <section aria-labelledby="stations-title">
      <div className="toolbar">
        <h1 id="stations-title">Stations</h1>
        <span className="muted" aria-live="polite">
          {stations.data ? `${list.length} stations · ${empty} without a charged battery` : ''}
        </span>
      </div>
      {stations.error && <ErrorBox error={stations.error} what="the stations" />}
      {!stations.data && stations.loading && <Loading what="the stations" />}
      {stations.data && list.length === 0 && <p className="muted">No station has reported yet.</p>}
      <ul className="stations">
        {list.map((s) => {
          const level = availability(s);
          return (
            <li key={s.station_id} className="station-card" data-station={s.station_id} data-availability={level}>
              <a href={formatRoute({ page: 'station', id: s.station_id, field: DEFAULT_STATION_FIELD, preset: '1d', from: null, to: null })}>
                <strong>{s.station_id}</strong>
              </a>
              <div className="availability" aria-label={`${s.batteries_available} of ${s.slots} batteries charged`}>
                <span className="big" data-key="available">
                  {s.batteries_available}
                </span>
                <span className="muted">/ {s.slots} charged</span>
                <span className={`badge ${level === 'empty' ? 'critical' : level === 'low' ? 'warning' : 'info'}`}>{LABEL[level]}</span>
              </div>
              <meter min={0} max={s.slots} low={s.slots / 4 + 0.01} optimum={s.slots} value={s.batteries_available} />
              <dl>
                <dt>Charging</dt>
                <dd data-key="charging">{s.charging}</dd>
                <dt>Faulted</dt>
                <dd data-key="faulted">{s.faulted}</dd>
                <dt>Swaps today</dt>
                <dd data-key="swaps">{s.swaps_today}</dd>
                <dt>Temperature</dt>
                <dd>{num(s.temperature_c)} °C</dd>
                <dt>Grid</dt>
                <dd>{num(s.grid_power_kw)} kW</dd>
              </dl>
              <span className="muted">last status {age(s.received_at_ms ?? Date.parse(s.ts), now)} ago</span>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
