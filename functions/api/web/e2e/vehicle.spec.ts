import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Page } from '@playwright/test';

import type { History, Series, Trip } from '../src/api/types';
import { expect, test } from './fixtures';
import { OUT, record } from './metrics';
import { alertRows, chart, expectLineOver, fixed, readTable, tableWith, when } from './screen';

const HOT_VEHICLE = 'veh-001';
const SIGNAL = 'BMS_PackStatus.PackCurrent';
const PAGE = `/#/vehicles/${HOT_VEHICLE}?signals=${SIGNAL},BMS_TemperatureSummary.CellTempMax&range=1h`;
const QUERY = `/vehicles/${HOT_VEHICLE}/query`;

const keyOf = (s: Series) => `${s.message_name}.${s.signal_name}`;

/** Microseconds since the epoch of an RFC 3339 time with up to six decimals (Date.parse stops at milliseconds). */
function microsOf(rfc3339: string): number {
  const [, whole, fraction] = /^(.*?:\d\d)(?:\.(\d+))?Z$/.exec(rfc3339)!;
  return Date.parse(`${whole}Z`) * 1000 + Number((fraction ?? '').padEnd(6, '0').slice(0, 6));
}

interface Charted {
  /** The range the page asked for. */
  range: { fromMs: number; toMs: number };
  answer: History;
}

/** The next history query the page makes, and the API's answer to it. */
async function nextQuery(page: Page, during: () => Promise<unknown>): Promise<Charted> {
  const request = page.waitForRequest((r) => r.url().endsWith(QUERY) && r.method() === 'POST');
  const response = page.waitForResponse((r) => r.url().endsWith(QUERY));
  await during();
  const body = (await request).postDataJSON() as { start_time: string; end_time: string };
  const answer = (await (await response).json()) as History;
  return { range: { fromMs: Date.parse(body.start_time), toMs: Date.parse(body.end_time) }, answer };
}

/** Waits until the chart of `series` draws its points where their times belong. */
async function expectDrawn(page: Page, series: Series, range: Charted['range']) {
  const first = series.points[0]!.ts_us / 1000;
  const last = series.points.at(-1)!.ts_us / 1000;
  await expectLineOver(chart(page, keyOf(series)), range, first, last);
}

/** The figure of a signal's chart, with its name and statistics. */
const figure = (page: Page, key: string) => page.getByRole('figure').filter({ has: chart(page, key) });

test.describe('the vehicle page', () => {
  test("charts the API's points of each chosen signal", async ({ page }) => {
    const { range, answer } = await nextQuery(page, () => page.goto(PAGE));
    // When a person first sees a drawn chart, from the start of navigation.
    const firstChartMs = await page.waitForFunction(
      () => {
        for (const canvas of document.querySelectorAll<HTMLCanvasElement>('[role="img"] canvas')) {
          const pixels = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? [];
          const hex = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim();
          const accent = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
          for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3]! >= 100 && accent.every((v, k) => Math.abs(pixels[i + k]! - v) <= 3)) return performance.now();
          }
        }
        return null;
      },
      null,
      { polling: 'raf', timeout: 15_000 },
    );
    record({ first_chart_ms: Math.round((await firstChartMs.jsonValue()) ?? -1) });
    await expect(page.getByRole('figure')).toHaveCount(2);
    expect(answer.series).toHaveLength(2);
    for (const series of answer.series) {
      expect(series.points.length, keyOf(series)).toBeGreaterThan(0);
      await expectDrawn(page, series, range);
    }
    await page.screenshot({ path: join(OUT, 'vehicle.png'), fullPage: true });
  });

  test("shows the API's statistics, of every value", async ({ page }) => {
    const { answer } = await nextQuery(page, () => page.goto(PAGE));
    const stats = answer.series.find((s) => keyOf(s) === SIGNAL)?.stats;
    expect(stats).toBeTruthy();
    const caption = figure(page, SIGNAL).locator('figcaption');
    await expect(caption).toContainText(`mean ${stats!.mean.toFixed(2)}`);
    await expect(caption).toContainText(`of all ${stats!.count.toLocaleString('en')} values`);
  });

  test('lists the overheating vehicle’s alert', async ({ page }) => {
    await page.goto(PAGE);
    await expect.poll(() => alertRows(page), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
  });

  test('a drag across a chart queries the range dragged over, which the URL keeps, in more detail', async ({ page }) => {
    const before = await nextQuery(page, () => page.goto(PAGE));
    const series = before.answer.series.find((s) => keyOf(s) === SIGNAL)!;
    await expectDrawn(page, series, before.range);
    // Across the middle half of the drive (the hour's other minutes hold no data).
    const plot = chart(page, SIGNAL).locator('.u-over');
    const box = (await plot.boundingBox())!;
    const x = (ms: number) => ((ms - before.range.fromMs) / (before.range.toMs - before.range.fromMs)) * box.width;
    const left = x(series.points[0]!.ts_us / 1000);
    const right = x(series.points.at(-1)!.ts_us / 1000);
    const x0 = left + (right - left) * 0.25;
    const x1 = left + (right - left) * 0.75;
    const zoomed = await nextQuery(page, async () => {
      await page.mouse.move(box.x + x0, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + x1, box.y + box.height / 2, { steps: 8 });
      await page.mouse.up();
    });
    const ratio = (zoomed.range.toMs - zoomed.range.fromMs) / (before.range.toMs - before.range.fromMs);
    expect(zoomed.range.fromMs).toBeGreaterThan(before.range.fromMs);
    expect(zoomed.range.toMs).toBeLessThan(before.range.toMs);
    expect(Math.abs(ratio - (x1 - x0) / box.width)).toBeLessThan(0.01);
    expect(new URL(page.url()).hash).toContain('from=');
    const detail = zoomed.answer.series.find((s) => keyOf(s) === SIGNAL)!;
    expect(detail.source_points).toBeGreaterThan(0);
    expect(detail.points.length).toBeGreaterThan(0);
    await expectDrawn(page, detail, zoomed.range);
  });

  test('the CSV export holds the points shown, as the API answered them', async ({ page }) => {
    const { answer } = await nextQuery(page, () => page.goto(PAGE));
    await expect(figure(page, SIGNAL).locator('figcaption')).toContainText('values');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = readFileSync((await download.path())!, 'utf8').trim().split(/\r?\n/);
    expect(csv[0]).toBe('message,signal,unit,ts_us,time,value');
    const rows = csv.slice(1).map((line) => {
      const f = line.split(',');
      return `${f[0]},${f[1]},${f[2]},${f[3]},${f[5]}`;
    });
    const points = answer.series.flatMap((s) => s.points.map((p) => `${s.message_name},${s.signal_name},${s.unit},${p.ts_us},${p.value}`));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows).toEqual(points);
  });

  test('the PNG export is a PNG', async ({ page }) => {
    const { answer, range } = await nextQuery(page, () => page.goto(PAGE));
    for (const series of answer.series) await expectDrawn(page, series, range);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export PNG' }).click()]);
    const png = readFileSync((await download.path())!);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(2000);
  });

  test("the raw export is the vehicle's frames of the charts' window, as candump", async ({ page }) => {
    await nextQuery(page, () => page.goto(PAGE));
    const response = page.waitForResponse((r) => r.url().includes(`/vehicles/${HOT_VEHICLE}/raw?`));
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /^Export raw/ }).click()]);
    const answer = await response;
    expect(answer.status()).toBe(200);
    const asked = new URL(answer.url()).searchParams;
    const [fromUs, toUs] = [Date.parse(asked.get('from')!) * 1000, Date.parse(asked.get('to')!) * 1000];
    const frames = Number(answer.headers()['canopy-frames']);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^${HOT_VEHICLE}_\\d{8}T\\d{6}Z\\.log$`));
    const lines = readFileSync((await download.path())!, 'utf8').trimEnd().split('\n');
    expect(frames).toBeGreaterThan(1000);
    expect(lines).toHaveLength(frames);
    // Every line a frame of the window, in time order (checked in one pass, not an expect a line).
    const bad: string[] = [];
    let previous = fromUs;
    for (const line of lines) {
      const m = /^\((\d+)\.(\d{6})\) (can\d) ([0-9A-F]{3}|[0-9A-F]{8})(?:##?[0-9A-F]*|#R\d*)$/.exec(line);
      const ts = m ? Number(m[1]) * 1e6 + Number(m[2]) : NaN;
      if (!(ts >= previous && ts < toUs)) bad.push(line);
      else previous = ts;
    }
    expect(bad.slice(0, 5)).toEqual([]);
    const next = answer.headers()['canopy-next-from'];
    if (next) {
      expect(microsOf(next)).toBeGreaterThan(previous);
      await expect(page.getByText(/export again for the rest/)).toBeVisible();
      await expect(page.getByRole('button', { name: 'Export raw (next)' })).toBeEnabled();
    }
  });

  test.describe('trips', () => {
    /** The API's trips of the week the page lists. */
    async function weekOfTrips(api: { json<T>(path: string): Promise<T> }): Promise<Trip[]> {
      const toMs = Math.ceil(Date.now() / 60_000) * 60_000;
      const query = `from=${new Date(toMs - 7 * 86_400_000).toISOString()}&to=${new Date(toMs).toISOString()}`;
      return (await api.json<{ trips: Trip[] }>(`/vehicles/${HOT_VEHICLE}/trips?${query}`)).trips;
    }

    test("are the API's", async ({ page, api }) => {
      await page.goto(PAGE);
      const table = tableWith(page, 'Distance');
      await expect(table).toBeVisible({ timeout: 20_000 });
      const shown = await readTable(table);
      const trips = await weekOfTrips(api);
      expect(trips.length).toBeGreaterThanOrEqual(1);
      expect(shown).toHaveLength(trips.length);
      for (const t of trips) {
        expect(shown).toContainEqual(expect.objectContaining({ Start: when(t.start_us / 1000), Distance: `${fixed(t.distance_km, 1)} km` }));
      }
    });

    test('a click on one charts it, and marks it', async ({ page, api }) => {
      // The page's own first query, answered before the click's is awaited.
      await nextQuery(page, () => page.goto(PAGE));
      const trips = await weekOfTrips(api);
      const trip = trips.at(-1)!;
      const row = tableWith(page, 'Distance').getByRole('row').filter({ has: page.getByRole('button', { name: when(trip.start_us / 1000) }) });
      const { range } = await nextQuery(page, () => row.getByRole('button').click());
      expect(range.fromMs).toBeLessThanOrEqual(trip.start_us / 1000);
      expect(range.toMs).toBeGreaterThanOrEqual(trip.end_us / 1000);
      expect(range.toMs - range.fromMs).toBeLessThan((trip.end_us - trip.start_us) / 1000 + 5 * 60_000);
      await expect(row).toHaveAttribute('aria-current', 'true', { timeout: 10_000 });
      await page.screenshot({ path: join(OUT, 'vehicle-trip.png'), fullPage: true });
    });
  });
});
