import { join } from 'node:path';

import type { Page } from '@playwright/test';

import type { Alert, FieldHistory, StationState } from '../src/api/types';
import { expect, test } from './fixtures';
import { OUT } from './metrics';
import { alertRows, chart, expectLineOver } from './screen';

/** Each station card as shown: its id, its charged batteries as read out, and its availability badge. */
async function cards(page: Page) {
  const items = page.getByRole('main').getByRole('listitem');
  await expect(items.first()).toBeVisible();
  const out: { id: string; charged: string; level: string }[] = [];
  for (const item of await items.all()) {
    out.push({
      id: (await item.getByRole('link').first().textContent()) ?? '',
      charged: (await item.getByLabel(/batteries charged$/).getAttribute('aria-label')) ?? '',
      level: (await item.getByText(/^(no charged battery|few charged|available)$/).textContent()) ?? '',
    });
  }
  return out;
}

test.describe('the stations page', () => {
  test("lists every station with the API's charged batteries, those without one first", async ({ page, api }) => {
    const { stations } = await api.json<{ stations: StationState[] }>('/stations?limit=100');
    await page.goto('/#/stations');
    const shown = await cards(page);
    expect(stations).toHaveLength(3);
    expect(shown.map((c) => c.id).sort()).toEqual(stations.map((s) => s.station_id).sort());
    for (const s of stations) {
      expect(shown.find((c) => c.id === s.station_id)?.charged).toBe(`${s.batteries_available} of ${s.slots} batteries charged`);
    }
    const firstNotEmpty = shown.findIndex((c) => c.level !== 'no charged battery');
    expect(shown.slice(firstNotEmpty < 0 ? shown.length : firstNotEmpty).every((c) => c.level !== 'no charged battery')).toBe(true);
    await page.screenshot({ path: join(OUT, 'stations.png') });
  });
});

test.describe("a station's page", () => {
  /** The busiest station, st-003 in the demo. */
  async function busiest(api: { json<T>(path: string): Promise<T> }): Promise<StationState> {
    const { stations } = await api.json<{ stations: StationState[] }>('/stations?limit=100');
    return stations.find((s) => s.station_id === 'st-003') ?? stations[0]!;
  }

  test('shows a tile per slot', async ({ page, api }) => {
    const station = await busiest(api);
    await page.goto(`/#/stations/${station.station_id}`);
    await expect(page.getByRole('list', { name: 'Slots' }).getByRole('listitem')).toHaveCount(station.slots);
  });

  test("charts the API's points", async ({ page, api }) => {
    const station = await busiest(api);
    const field = `/stations/${station.station_id}/history/batteries_available`;
    // The demo's stations report for about a minute: a range around their reports draws them across the chart.
    const { points } = await api.json<FieldHistory>(field);
    expect(points.length).toBeGreaterThan(0);
    const first = points[0]!.ts_us / 1000;
    const last = points.at(-1)!.ts_us / 1000;
    const margin = Math.max(60_000, (last - first) / 10);
    const from = new Date(first - margin).toISOString();
    const to = new Date(last + margin).toISOString();
    const history = page.waitForResponse((r) => r.url().includes(field));
    await page.goto(`/#/stations/${station.station_id}?from=${from}&to=${to}`);
    const response = await history;
    const asked = new URL(response.url()).searchParams;
    const answer = (await response.json()) as FieldHistory;
    expect(answer.points.length).toBeGreaterThan(0);
    await expectLineOver(
      chart(page, `${station.station_id}.batteries_available`),
      { fromMs: Date.parse(asked.get('from')!), toMs: Date.parse(asked.get('to')!) },
      answer.points[0]!.ts_us / 1000,
      answer.points.at(-1)!.ts_us / 1000,
    );
  });

  test('lists its alerts', async ({ page, api }) => {
    const station = await busiest(api);
    const { alerts } = await api.json<{ alerts: Alert[] }>(`/stations/${station.station_id}/alerts`);
    await page.goto(`/#/stations/${station.station_id}`);
    await expect(page.getByRole('list', { name: 'Slots' })).toBeVisible();
    await expect.poll(() => alertRows(page.getByRole('main')), { timeout: 10_000 }).toBe(alerts.length);
    await page.screenshot({ path: join(OUT, 'station.png'), fullPage: true });
  });
});
