import { useMemo, useState } from 'react';

import type { History } from '../../api/types';
import { chartsPng } from '../../components/Chart';
import { ErrorBox, Loading } from '../../components/Status';
import { age, download, num, when } from '../../lib/format';
import { PRESETS, navigate, rangeOf, type Preset, type Route } from '../../lib/route';
import { parseSignalKey, signalKey } from '../../lib/signals';
import { AlertRows } from '../alerts/AlertRows';
import { useTrips } from '../trips/api';
import { TripRows } from '../trips/TripRows';
import { tripRange } from '../trips/trips';
import { useSignalHistory, useVehicle, useVehicleAlerts, useVehicleSignals } from './api';
import { seriesCsv } from './csv';
import { RangeInputs } from './RangeInputs';
import { RawExport } from './RawExport';
import { SignalChart } from './SignalChart';
import { SignalPicker } from './SignalPicker';

type VehicleRoute = Extract<Route, { page: 'vehicle' }>;

/** What a first visit shows: charge, current and the hottest cell. */
const DEFAULT_SIGNALS = ['BMS_PackStatus.StateOfCharge', 'BMS_PackStatus.PackCurrent', 'BMS_TemperatureSummary.CellTempMax'];

/** Points per chart: about one per pixel of a wide screen. */
const MAX_POINTS = Math.min(2000, Math.max(300, Math.round(typeof window === 'undefined' ? 1000 : window.innerWidth)));

/** One vehicle: its latest state, charts of the chosen signals over a range, its trips and its alerts. */
export function Vehicle({ route }: { route: VehicleRoute }) {
  const id = route.id;
  const catalog = useVehicleSignals(id);
  const state = useVehicle(id);
  const alerts = useVehicleAlerts(id);
  const trips = useTrips(id);

  const known = useMemo(() => new Set((catalog.data?.signals ?? []).map((e) => `${e.message}.${e.signal}`)), [catalog.data]);
  const signals = route.signals.length > 0 ? route.signals : DEFAULT_SIGNALS.filter((s) => known.has(s));
  const { fromMs, toMs } = rangeOf(route, Date.now());
  const refs = signals.map(parseSignalKey).filter((s) => s !== null);
  const history = useSignalHistory(id, refs, { fromMs, toMs }, MAX_POINTS);
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
            <RawExport id={id} fromMs={fromMs} toMs={toMs} />
          </div>
          {history.error && <ErrorBox error={history.error} what="history" />}
          {history.loading && <Loading what="history" />}
          {signals.length === 0 && catalog.data && <p className="muted">Pick signals to chart.</p>}
          {shown?.series.map((s, i) => (
            <SignalChart
              key={signalKey(s)}
              series={s}
              fromMs={fromMs}
              toMs={toMs}
              alerts={inRange}
              showTimeAxis={i === shown.series.length - 1}
              onZoom={setRange}
            />
          ))}
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
