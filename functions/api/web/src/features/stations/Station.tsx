import { useState } from 'react';

import type { FieldHistory, Series, StationField } from '../../api/types';
import { Chart } from '../../components/Chart';
import { ErrorBox, Loading } from '../../components/Status';
import { age, num } from '../../lib/format';
import { PRESETS, navigate, rangeOf, type Preset, type Route } from '../../lib/route';
import { AlertRows } from '../alerts/AlertRows';
import { useFieldHistory, useStation, useStationAlerts } from './api';
import { CHARTABLE, availability } from './availability';
import { Slots } from './Slots';

type StationRoute = Extract<Route, { page: 'station' }>;

/** Points per chart: about one per pixel of a wide screen. */
const MAX_POINTS = 1000;

/** One station: its slots, a field's history and its alerts. */
export function Station({ route }: { route: StationRoute }) {
  const id = route.id;
  const state = useStation(id);
  const alerts = useStationAlerts(id);
  const { fromMs, toMs } = rangeOf(route, Date.now());
  // A hand-edited URL may name any field: the API's 400 then says which it charts.
  const history = useFieldHistory(id, route.field as StationField, { fromMs, toMs }, MAX_POINTS);
  // While a new range loads, the last answer stays drawn.
  const [shown, setShown] = useState<FieldHistory | null>(null);
  if (history.data && history.data !== shown) setShown(history.data);
  const go = (patch: Partial<StationRoute>) => navigate({ ...route, ...patch });
  const setRange = (from: number, to: number) =>
    go({ preset: null, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  const label = CHARTABLE.find((c) => c.field === route.field)?.label ?? route.field;
  // The chart draws a series: the field's history as one.
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
      {s && <Slots station={s} />}

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
            <span className="stats">
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
