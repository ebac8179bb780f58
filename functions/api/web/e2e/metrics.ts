// Measurements of a run, kept beside the screenshots in e2e/out/metrics.json.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const OUT = join(dirname(fileURLToPath(import.meta.url)), 'out');
export const METRICS = join(OUT, 'metrics.json');

/** Adds `values` to the run's metrics. */
export function record(values: Record<string, number | null>): void {
  mkdirSync(OUT, { recursive: true });
  let held: Record<string, unknown> = {};
  try {
    held = JSON.parse(readFileSync(METRICS, 'utf8')) as Record<string, unknown>;
  } catch {
    // The run's first measurement.
  }
  writeFileSync(METRICS, JSON.stringify({ ...held, ...values }, null, 2));
}
