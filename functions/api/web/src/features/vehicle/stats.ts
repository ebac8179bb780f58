import type { Point } from '../../api/types';

export interface Stats {
  count: number;
  min: number;
  max: number;
  mean: number;
  stddev: number;
}

/**
 * Statistics of the plotted points (Welford's method: stable for long
 * series). These describe what is drawn, not every raw sample, and the
 * console labels them so until the API returns statistics of the range.
 */
export function statsOf(points: readonly Point[]): Stats | null {
  let count = 0;
  let mean = 0;
  let m2 = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const { value } of points) {
    if (!Number.isFinite(value)) continue;
    count += 1;
    const delta = value - mean;
    mean += delta / count;
    m2 += delta * (value - mean);
    if (value < min) min = value;
    if (value > max) max = value;
  }
  if (count === 0) return null;
  return { count, min, max, mean, stddev: count > 1 ? Math.sqrt(m2 / count) : 0 };
}
