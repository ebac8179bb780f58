import { useState } from 'react';

import type { DeviceAlert, FieldHistory, Series, StationState } from '../api';
import { Chart } from '../components/Chart';
import { AlertRows } from './Alerts';
import { ErrorBox, Loading } from '../components/Status';
import { useConsole } from '../context';
import { age, num } from '../lib/format';
import { CHARTABLE, availability, slots } from '../lib/stations';
import { PRESETS, navigate, rangeOf, type Preset, type Route } from '../route';
import { useResource } from '../store';
import { STATIONS_POLL_MS } from './Stations';

type StationRoute = Extract<Route, { page: 'station' }>;

/** Points per chart: about one per pixel of a wide screen. */
const MAX_POINTS = 1000;

/** One station: its slots, a field's history and its alerts. */
export function Station({ route }: { route: StationRoute }) {
  const { client } = useConsole();
  const id = route.id;
  const path = `/stations/${encodeURIComponent(id)}`;
  const state = useResource(`station:${id}`, () => client.get<StationState>(path), STATIONS_POLL_MS);
  const alerts = useResource(
    `station-alerts:${id}`,
    () => client.get<{ alerts: DeviceAlert[] }>(`${path}/alerts?limit=100`),
    15_000,
  );
  const { fromMs, toMs } = rangeOf(route, Date.now());
  const historyKey = `station-history:${id}:${route.field}:${fromMs}:${toMs}`;
  const history = useResource(historyKey, () =>
    client.get<FieldHistory>(
      `${path}/history/${encodeURIComponent(route.field)}?from=${new Date(fromMs).toISOString()}&to=${new Date(toMs).toISOString()}&max_points=${MAX_POINTS}`,
    ),
  );
  // While a new range loads, the last answer stays drawn.
  const [shown, setShown] = useState<FieldHistory | null>(null);
  if (history.data && history.data !== shown) setShown(history.data);
  const go = (patch: Partial<StationRoute>) => navigate({ ...route, ...patch });
  const setRange = (from: number, to: number) =>
    go({ preset: null, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  const label = CHARTABLE.find((c) => c.field === route.field)?.label ?? route.field;
  const series: Series | null = shown && {
    message_name: id,
    signal_name: shown.field,
    unit: shown.unit,
    source_points: shown.stats?.count ?? shown.points.length,
    downsampled: (shown.stats?.count ?? 0) > shown.points.length,
    points: shown.points,
    stats: null,
  };
  const inRange = (alerts.data?.alerts ?? []).filter((a) => a.ts_us / 1000 >= fromMs && a.ts_us / 1000 <= toMs);
  const s = state.data;

  return (
    <section aria-labelledby="station-title" className="station">
      <div className="toolbar">
        <h1 id="station-title">{id}</h1>
        {s && (
          <span className="muted">
            {s.batteries_available} of {s.slots} charged · {s.charging} charging · {s.faulted} faulted · {s.swaps_today} swaps today ·{' '}
            {num(s.temperature_c)} °C · {num(s.grid_power_kw)} kW · last status {age(s.received_at_ms ?? Date.parse(s.ts), Date.now())} ago
          </span>
        )}
        {s && availability(s) === 'empty' && <span className="badge critical">no charged battery</span>}
      </div>
      {state.error && <ErrorBox error={state.error} what={`station ${id}`} />}
      {!s && state.loading && <Loading what={`station ${id}`} />}
      {s && (
        <ol className="slots" aria-label="Slots">
          {slots(s).map((slot) => (
            <li key={slot.index} className="slot" data-charged={slot.charged ? 'true' : 'false'} title={`Slot ${slot.index + 1}`}>
              <span className="bar" style={{ height: `${Math.max(0, Math.min(100, slot.soc_pct))}%` }} aria-hidden="true" />
              <span className="soc" data-key="soc">
                {num(slot.soc_pct, 0)} %
              </span>
              <span className="muted">{num(slot.temp_c)} °C</span>
            </li>
          ))}
        </ol>
      )}

      <div className="range" role="group" aria-label="Chart">
        <select aria-label="Field" value={route.field} onChange={(e) => go({ field: e.target.value })}>
          {CHARTABLE.map((c) => (
            <option key={c.field} value={c.field}>
              {c.label}
            </option>
          ))}
        </select>
        {(Object.keys(PRESETS) as Preset[]).map((p) => (
          <button key={p} type="button" aria-pressed={route.preset === p} onClick={() => go({ preset: p, from: null, to: null })}>
            {PRESETS[p].label}
          </button>
        ))}
      </div>
      {history.error && <ErrorBox error={history.error} what="history" />}
      {history.loading && !shown && <Loading what="history" />}
      {series && shown && (
        <figure className="chart-card">
          <figcaption>
            <strong>{label}</strong> <span className="muted">{shown.unit}</span>
            <span className="stats" data-exact="true">
              {shown.stats
                ? `min ${num(shown.stats.min, 2)} · max ${num(shown.stats.max, 2)} · mean ${num(shown.stats.mean, 2)} · stddev ${num(shown.stats.stddev, 2)} (of all ${shown.stats.count.toLocaleString('en')} values)`
                : 'no data in this range'}
            </span>
          </figcaption>
          <Chart series={series} fromMs={fromMs} toMs={toMs} alerts={inRange} showTimeAxis onZoom={setRange} />
        </figure>
      )}

      <h2>Alerts</h2>
      {alerts.error && <ErrorBox error={alerts.error} what="alerts" />}
      {alerts.data && <AlertRows alerts={alerts.data.alerts} showVehicle={false} />}
    </section>
  );
}
