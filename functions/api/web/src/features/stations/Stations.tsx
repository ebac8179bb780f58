import { ErrorBox, Loading } from '../../components/Status';
import { age, num } from '../../lib/format';
import { DEFAULT_STATION_FIELD, formatRoute } from '../../lib/route';
import { useNow } from '../../lib/useNow';
import { useStations } from './api';
import { availability, byUrgency } from './availability';

const LABEL = { empty: 'no charged battery', low: 'few charged', ok: 'available' } as const;

/** Availability at a glance: one card per station, the empty ones first. */
export function Stations() {
  const stations = useStations();
  const now = useNow();
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
            <li key={s.station_id} className="station-card" data-availability={level}>
              <a href={formatRoute({ page: 'station', id: s.station_id, field: DEFAULT_STATION_FIELD, preset: '1d', from: null, to: null })}>
                <strong>{s.station_id}</strong>
              </a>
              <div className="availability" aria-label={`${s.batteries_available} of ${s.slots} batteries charged`}>
                <span className="big">{s.batteries_available}</span>
                <span className="muted">/ {s.slots} charged</span>
                <span className={`badge ${level === 'empty' ? 'critical' : level === 'low' ? 'warning' : 'info'}`}>{LABEL[level]}</span>
              </div>
              <meter min={0} max={s.slots} low={s.slots / 4 + 0.01} optimum={s.slots} value={s.batteries_available} />
              <dl>
                <dt>Charging</dt>
                <dd>{s.charging}</dd>
                <dt>Faulted</dt>
                <dd>{s.faulted}</dd>
                <dt>Swaps today</dt>
                <dd>{s.swaps_today}</dd>
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
