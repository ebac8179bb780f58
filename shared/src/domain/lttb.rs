//! Largest-Triangle-Three-Buckets downsampling (Steinarsson, 2013): keeps the
//! shape of a series (its peaks and troughs) in a fixed number of points, so a
//! chart of a vehicle-day of 100 Hz data stays faithful in 2,000 points.

/// One sample of a signal: time in µs since the epoch, and its value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Point {
    pub ts_us: i64,
    pub value: f64,
}

/// Reduces `points` (sorted by time) to `threshold` points: the first and the
/// last are kept, and from each of the `threshold - 2` buckets between them the
/// point that makes the largest triangle with the point kept before it and the
/// average of the next bucket. A series no longer than `threshold`, or a
/// threshold below 3, is returned as it is (a threshold of 0 or 1 or 2 cannot
/// keep both ends and a shape).
pub fn lttb(points: &[Point], threshold: usize) -> Vec<Point> {
    let n = points.len();
    if threshold >= n || threshold < 3 {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(threshold);
    out.push(points[0]);
    // Buckets of the inner points [1, n-1), of equal (fractional) width.
    let width = (n - 2) as f64 / (threshold - 2) as f64;
    let bucket = |i: usize| -> (usize, usize) {
        let start = (i as f64 * width) as usize + 1;
        let end = (((i + 1) as f64 * width) as usize + 1).min(n - 1);
        (start, end.max(start + 1))
    };
    let mut kept = 0usize;
    for i in 0..threshold - 2 {
        let (start, end) = bucket(i);
        // The next bucket's average; after the last bucket, the last point.
        let (avg_t, avg_v) = if i + 1 < threshold - 2 {
            let (ns, ne) = bucket(i + 1);
            let count = (ne - ns) as f64;
            let (st, sv) = points[ns..ne]
                .iter()
                .fold((0.0, 0.0), |(t, v), p| (t + p.ts_us as f64, v + p.value));
            (st / count, sv / count)
        } else {
            (points[n - 1].ts_us as f64, points[n - 1].value)
        };
        let a = points[kept];
        let (at, av) = (a.ts_us as f64, a.value);
        let mut best = start;
        let mut best_area = -1.0;
        for (j, p) in points[start..end].iter().enumerate() {
            // Twice the triangle's area; the factor does not change the choice.
            let area = ((at - avg_t) * (p.value - av) - (at - p.ts_us as f64) * (avg_v - av)).abs();
            if area > best_area {
                best_area = area;
                best = start + j;
            }
        }
        out.push(points[best]);
        kept = best;
    }
    out.push(points[n - 1]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, f: impl Fn(usize) -> f64) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                ts_us: i as i64 * 10_000,
                value: f(i),
            })
            .collect()
    }

    #[test]
    fn keeps_the_ends_and_returns_the_requested_count() {
        let s = series(100_000, |i| (i as f64 / 500.0).sin());
        for threshold in [3, 10, 2000, 99_999] {
            let out = lttb(&s, threshold);
            assert_eq!(out.len(), threshold);
            assert_eq!(out[0], s[0]);
            assert_eq!(out[threshold - 1], s[s.len() - 1]);
        }
    }

    #[test]
    fn output_is_a_subsequence_in_time_order() {
        let s = series(10_000, |i| ((i * 7919) % 1000) as f64);
        let out = lttb(&s, 500);
        assert!(out.windows(2).all(|w| w[0].ts_us < w[1].ts_us));
        assert!(out.iter().all(|p| s.contains(p)));
    }

    #[test]
    fn preserves_a_single_spike() {
        let s = series(86_400, |i| {
            if i == 43_210 {
                95.0
            } else {
                30.0 + (i % 10) as f64 * 0.01
            }
        });
        let out = lttb(&s, 2000);
        assert!(out.iter().any(|p| p.value == 95.0), "the spike must survive");
        let dip = series(86_400, |i| if i == 1234 { -40.0 } else { 0.0 });
        assert!(lttb(&dip, 100).iter().any(|p| p.value == -40.0));
    }

    #[test]
    fn short_series_and_tiny_thresholds_are_returned_unchanged() {
        let s = series(5, |i| i as f64);
        assert_eq!(lttb(&s, 10), s);
        assert_eq!(lttb(&s, 5), s);
        assert_eq!(lttb(&s, 2), s);
        assert!(lttb(&[], 10).is_empty());
    }

    #[test]
    fn a_straight_line_keeps_evenly_spread_points() {
        let s = series(1000, |i| i as f64);
        let out = lttb(&s, 12);
        // Each bucket holds 99.8 points; the chosen ones stay inside their buckets.
        for (i, p) in out[1..11].iter().enumerate() {
            let idx = (p.ts_us / 10_000) as f64;
            assert!(
                idx >= 1.0 + i as f64 * 99.8 - 1.0 && idx <= 1.0 + (i + 1) as f64 * 99.8,
                "{i}: {idx}"
            );
        }
    }
}
