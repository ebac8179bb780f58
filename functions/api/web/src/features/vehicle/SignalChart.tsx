import type { Alert, Series } from '../../api/types';
import { Chart } from '../../components/Chart';
import { num, when } from '../../lib/format';
import { statsOf } from './stats';

interface Props {
  series: Series;
  fromMs: number;
  toMs: number;
  alerts: readonly Alert[];
  showTimeAxis: boolean;
  onZoom: (fromMs: number, toMs: number) => void;
}

/**
 * One signal's chart with its name and statistics: the API's exact ones of
 * every value in the range, or, from an API that sends none, those of the
 * plotted points, labelled as such.
 */
export function SignalChart({ series, fromMs, toMs, alerts, showTimeAxis, onZoom }: Props) {
  const exact = series.stats ?? null;
  const plotted = exact ? null : statsOf(series.points);
  const stats = exact ?? plotted;
  const about = exact ? `of all ${exact.count.toLocaleString('en')} values` : `of the ${plotted?.count ?? 0} plotted points`;
  return (
    <figure className="chart-card">
      <figcaption>
        <strong>{series.signal_name}</strong>{' '}
        <span className="muted">
          {series.message_name}
          {series.unit ? ` · ${series.unit}` : ''}
        </span>
        <span
          className="stats"
          title={
            exact
              ? `Exact, from ${exact.source}, over ${when(exact.from_us / 1000)} – ${when(exact.to_us / 1000)}`
              : 'Computed from the plotted points: the API returned no statistics'
          }
        >
          {stats
            ? `min ${num(stats.min, 2)} · max ${num(stats.max, 2)} · mean ${num(stats.mean, 2)} · stddev ${num(stats.stddev, 2)} (${about})`
            : 'no data in this range'}
        </span>
        {exact && exact.out_of_range > 0 && (
          <span className="badge warning" title="Values outside the signal's DBC range: stored, and flagged in the lake">
            {exact.out_of_range.toLocaleString('en')} out of range
          </span>
        )}
      </figcaption>
      <Chart series={series} fromMs={fromMs} toMs={toMs} alerts={alerts} showTimeAxis={showTimeAxis} onZoom={onZoom} />
    </figure>
  );
}
