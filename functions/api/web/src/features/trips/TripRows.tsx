import type { Trip } from '../../api/types';
import { num, when } from '../../lib/format';
import { duration, tripRange } from './trips';

/** A vehicle's trips, newest first; a click opens the charts on one, and the one shown is marked. */
export function TripRows({
  trips,
  shown,
  onOpen,
}: {
  trips: readonly Trip[];
  shown: { fromMs: number; toMs: number };
  onOpen: (trip: Trip) => void;
}) {
  if (trips.length === 0) return <p className="muted">No trips in the last week.</p>;
  return (
    <div className="table-wrap">
      <table className="trips">
        <thead>
          <tr>
            <th scope="col">Start</th>
            <th scope="col">Duration</th>
            <th scope="col">Distance</th>
            <th scope="col">Energy out / in</th>
            <th scope="col">SoC</th>
            <th scope="col">Hottest cell</th>
            <th scope="col">Alerts</th>
          </tr>
        </thead>
        <tbody>
          {[...trips].reverse().map((t) => {
            const range = tripRange(t);
            const current = range.fromMs === shown.fromMs && range.toMs === shown.toMs;
            return (
              <tr key={t.start_us} aria-current={current ? 'true' : undefined}>
                <td>
                  <button type="button" className="link" onClick={() => onOpen(t)} title="Chart this trip">
                    {when(t.start_us / 1000)}
                  </button>
                </td>
                <td>{duration(t.duration_s)}</td>
                <td className="num">{num(t.distance_km, 1)} km</td>
                <td className="num">
                  {num(t.energy_out_kwh, 2)} / {num(t.energy_in_kwh, 2)} kWh
                </td>
                <td className="num">
                  {num(t.soc_start_pct)} → {num(t.soc_end_pct)} %
                </td>
                <td className="num">{num(t.cell_temp_max_c)} °C</td>
                <td>{t.alerts.length > 0 ? <span className="badge alert">{t.alerts.length}</span> : <span className="muted">—</span>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
