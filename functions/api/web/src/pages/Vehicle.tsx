import { useMemo, useState } from 'react';

import { parseSignalKey, signalKey, type Alert, type CatalogEntry, type History, type Trip, type VehicleState } from '../api';
import { Chart, chartsPng } from '../components/Chart';
import { SignalPicker } from '../components/SignalPicker';
import { ErrorBox, Loading } from '../components/Status';
import { useLiveStatus } from '../live';
import { TripRows, tripRange } from '../components/Trips';
import { useConsole } from '../context';
import { seriesCsv } from '../lib/csv';
import { age, download, num, toLocalInput, when } from '../lib/format';
import { statsOf } from '../lib/stats';
import { PRESETS, navigate, rangeOf, type Preset, type Route } from '../route';
import { useResource } from '../store';
import { AlertRows } from './Alerts';

type VehicleRoute = Extract<Route, { page: 'vehicle' }>;

/** What a first visit shows: charge, current and the hottest cell. */
const DEFAULT_SIGNALS = ['BMS_PackStatus.StateOfCharge', 'BMS_PackStatus.PackCurrent', 'BMS_TemperatureSummary.CellTempMax'];

/** How far back the trip list reaches. */
const TRIPS_MS = 7 * 86_400_000;

/** Points per chart: about one per pixel of a wide screen. */
const MAX_POINTS = Math.min(2000, Math.max(300, Math.round(typeof window === 'undefined' ? 1000 : window.innerWidth)));

export function Vehicle({ route }: { route: VehicleRoute }) {
  const { client } = useConsole();
  const id = route.id;
  const catalog = useResource(`signals:${id}`, () =>
    client.get<{ signals: CatalogEntry[] }>(`/vehicles/${encodeURIComponent(id)}/signals`),
  );
  // Pushed while the live stream is up; read every 10 s while it is down.
  const live = useLiveStatus() === 'live';
  const state = useResource(
    `vehicle:${id}`,
    () => client.get<VehicleState>(`/vehicles/${encodeURIComponent(id)}`),
    live ? undefined : 10_000,
  );
  const alerts = useResource(`alerts:${id}`, () =>
    client.get<{ alerts: Alert[] }>(`/vehicles/${encodeURIComponent(id)}/alerts?limit=100`),
  );

  const known = useMemo(() => new Set((catalog.data?.signals ?? []).map((e) => `${e.message}.${e.signal}`)), [catalog.data]);
  const signals = route.signals.length > 0 ? route.signals : DEFAULT_SIGNALS.filter((s) => known.has(s));
  const { fromMs, toMs } = rangeOf(route, Date.now());
  const refs = signals.map(parseSignalKey).filter((s) => s !== null);
  const historyKey = refs.length > 0 ? `history:${id}:${signals.join(',')}:${fromMs}:${toMs}:${MAX_POINTS}` : null;
  const history = useResource(historyKey, () =>
    client.post<History>(`/vehicles/${encodeURIComponent(id)}/query`, {
      signals: refs,
      start_time: new Date(fromMs).toISOString(),
      end_time: new Date(toMs).toISOString(),
      max_points: MAX_POINTS,
    }),
  );
  // The last week's trips, to the minute (so a re-render asks for nothing new).
  const tripsTo = Math.ceil(Date.now() / 60_000) * 60_000;
  const trips = useResource(`trips:${id}:${tripsTo}`, () =>
    client.get<{ trips: Trip[] }>(
      `/vehicles/${encodeURIComponent(id)}/trips?from=${new Date(tripsTo - TRIPS_MS).toISOString()}&to=${new Date(tripsTo).toISOString()}`,
    ),
  );
  // While a new range loads, the last answer stays drawn.
  const [shown, setShown] = useState<History | null>(null);
  if (history.data && history.data !== shown) setShown(history.data);
  const inRange = (alerts.data?.alerts ?? []).filter((a) => a.ts_us / 1000 >= fromMs && a.ts_us / 1000 <= toMs);

  const go = (patch: Partial<VehicleRoute>) => navigate({ ...route, signals, ...patch });
  const setRange = (from: number, to: number) =>
    go({ preset: null, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  const span = toMs - fromMs;

  return (
    <section aria-labelledby="vehicle-title" className="vehicle">
      <div className="toolbar">
        <h1 id="vehicle-title">{id}</h1>
        {state.data && (
          <span className="muted">
            SoC {num(state.data.soc_pct)} % · {num(state.data.pack_voltage_v)} V · {num(state.data.pack_current_a)} A · hottest cell{' '}
            {num(state.data.cell_temp_max_c)} °C · {num(state.data.speed_kph, 0)} km/h · last message{' '}
            {age(state.data.received_at_ms ?? Date.parse(state.data.ts), Date.now())} ago
          </span>
        )}
      </div>
      {state.error && <ErrorBox error={state.error} what={`vehicle ${id}`} />}

      <div className="range" role="group" aria-label="Time range">
        {(Object.keys(PRESETS) as Preset[]).map((p) => (
          <button key={p} type="button" aria-pressed={route.preset === p} onClick={() => go({ preset: p, from: null, to: null })}>
            {PRESETS[p].label}
          </button>
        ))}
        <button type="button" aria-label="Earlier" onClick={() => setRange(fromMs - span / 2, toMs - span / 2)}>
          ◀
        </button>
        <button type="button" aria-label="Later" onClick={() => setRange(fromMs + span / 2, toMs + span / 2)}>
          ▶
        </button>
        <button type="button" onClick={() => setRange(fromMs - span / 2, toMs + span / 2)}>
          Zoom out
        </button>
        <RangeInputs key={`${fromMs}-${toMs}`} fromMs={fromMs} toMs={toMs} onApply={setRange} />
      </div>

      <div className="vehicle-body">
        <aside>
          {catalog.error && <ErrorBox error={catalog.error} what="the signal catalog" />}
          {!catalog.data && catalog.loading && <Loading what="signals" />}
          {catalog.data && (
            <SignalPicker catalog={catalog.data.signals} selected={signals} onChange={(s) => go({ signals: s })} />
          )}
        </aside>
        <div className="charts">
          <div className="toolbar">
            <span className="muted">
              {when(fromMs)} – {when(toMs)} · drag across a chart to zoom
            </span>
            <button type="button" disabled={!shown} onClick={() => shown && download(new Blob([seriesCsv(shown.series)], { type: 'text/csv' }), `${id}.csv`)}>
              Export CSV
            </button>
            <button
              type="button"
              disabled={!shown}
              onClick={async () => {
                const style = getComputedStyle(document.documentElement);
                const png = await chartsPng({ background: style.getPropertyValue('--bg'), text: style.getPropertyValue('--text') });
                if (png) download(png, `${id}.png`);
              }}
            >
              Export PNG
            </button>
          </div>
          {history.error && <ErrorBox error={history.error} what="history" />}
          {history.loading && <Loading what="history" />}
          {signals.length === 0 && catalog.data && <p className="muted">Pick signals to chart.</p>}
          {shown?.series.map((s, i) => {
            const exact = s.stats ?? null;
            const plotted = exact ? null : statsOf(s.points);
            const stats = exact ?? plotted;
            const about = exact
              ? `of all ${exact.count.toLocaleString('en')} values`
              : `of the ${plotted?.count ?? 0} plotted points`;
            return (
              <figure key={signalKey(s)} className="chart-card">
                <figcaption>
                  <strong>{s.signal_name}</strong> <span className="muted">{s.message_name}{s.unit ? ` · ${s.unit}` : ''}</span>
                  <span
                    className="stats"
                    data-exact={exact ? 'true' : 'false'}
                    title={exact ? `Exact, from ${exact.source}, over ${when(exact.from_us / 1000)} – ${when(exact.to_us / 1000)}` : 'Computed from the plotted points: the API returned no statistics'}
                  >
                    {stats
                      ? `min ${num(stats.min, 2)} · max ${num(stats.max, 2)} · mean ${num(stats.mean, 2)} · stddev ${num(stats.stddev, 2)} (${about})`
                      : 'no data in this range'}
                  </span>
                  {exact && (exact.out_of_range ?? 0) > 0 && (
                    <span className="badge warning" data-key="out-of-range" title="Values outside the signal's DBC range: stored, and flagged in the lake">
                      {exact.out_of_range?.toLocaleString('en')} out of range
                    </span>
                  )}
                </figcaption>
                <Chart
                  series={s}
                  fromMs={fromMs}
                  toMs={toMs}
                  alerts={inRange}
                  showTimeAxis={i === shown.series.length - 1}
                  onZoom={setRange}
                />
              </figure>
            );
          })}
          <h2>Trips</h2>
          {trips.error && <ErrorBox error={trips.error} what="trips" />}
          {!trips.data && trips.loading && <Loading what="trips" />}
          {trips.data && (
            <TripRows
              trips={trips.data.trips}
              shown={{ fromMs, toMs }}
              onOpen={(t) => {
                const r = tripRange(t);
                setRange(r.fromMs, r.toMs);
              }}
            />
          )}
          <h2>Alerts</h2>
          {alerts.error && <ErrorBox error={alerts.error} what="alerts" />}
          {!alerts.data && alerts.loading && <Loading what="alerts" />}
          {alerts.data && <AlertRows alerts={alerts.data.alerts} showVehicle={false} />}
        </div>
      </div>
    </section>
  );
}

function RangeInputs({ fromMs, toMs, onApply }: { fromMs: number; toMs: number; onApply: (from: number, to: number) => void }) {
  const [from, setFrom] = useState(toLocalInput(fromMs));
  const [to, setTo] = useState(toLocalInput(toMs));
  const valid = Date.parse(from) < Date.parse(to);
  return (
    <form
      className="absolute"
      onSubmit={(e) => {
        e.preventDefault();
        if (valid) onApply(Date.parse(from), Date.parse(to));
      }}
    >
      <label>
        From <input type="datetime-local" step="1" value={from} onChange={(e) => setFrom(e.target.value)} />
      </label>
      <label>
        To <input type="datetime-local" step="1" value={to} onChange={(e) => setTo(e.target.value)} />
      </label>
      <button type="submit" disabled={!valid}>
        Show
      </button>
    </form>
  );
}
