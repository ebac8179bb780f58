import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';

import type { Page } from '@playwright/test';

import { expect, test } from './fixtures';
import { readTable, tableWith } from './screen';
import { LOCAL } from './stack';

/** The header's badge: "● live" while states are pushed, "● polling" or "● connecting…" otherwise. */
const badge = (page: Page) => page.getByRole('banner').getByText(/^● /);

/** Requests for the fleet listing, counted from now on. */
function fleetReads(page: Page): string[] {
  const reads: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/vehicles') reads.push(r.url());
  });
  return reads;
}

test.describe('the live stream', () => {
  test('the console is on it', async ({ page }) => {
    await page.goto('/');
    await expect(badge(page)).toHaveText('● live');
  });

  test('a state posted to /ingest reaches the fleet page pushed, without a poll', async ({ page, baseURL }) => {
    await page.goto('/');
    await expect(page.getByRole('row', { name: /veh-002/ })).toBeVisible();
    await expect(badge(page)).toHaveText('● live');
    const made = JSON.parse(
      execFileSync(
        join(dirname(LOCAL), 'device-keys'),
        ['--endpoint', process.env.CANOPY_E2E_MOTO!, '--table', 'DeviceKeysTable', 'create', '--device', 'veh-002'],
        { encoding: 'utf8' },
      ),
    ) as { key: string };
    const polls = fleetReads(page);
    const pushed = {
      v: 1,
      vehicle_id: 'veh-002',
      ts: new Date().toISOString(),
      seq: 9_000_000,
      soc_pct: 55.5,
      pack_voltage_v: 371.0,
      pack_current_a: 12.0,
      cell_voltage_min_v: 3.9,
      cell_voltage_max_v: 3.95,
      cell_temp_min_c: 25.0,
      cell_temp_max_c: 31.0,
      speed_kph: 123.4,
    };
    const posted = await fetch(`${baseURL}/ingest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': made.key },
      body: JSON.stringify(pushed),
    });
    expect(posted.status).toBe(202);
    await expect
      .poll(async () => (await readTable(tableWith(page, 'Last message'))).find((r) => r.Vehicle === 'veh-002')?.['Speed (km/h)'])
      .toBe('123');
    expect(polls).toEqual([]);
  });

  test('without it the console polls', async ({ page }) => {
    await page.routeWebSocket(/\/live/, (ws) => ws.close());
    const reads = fleetReads(page);
    await page.goto('/');
    await expect(page.getByRole('row', { name: /veh-001/ })).toBeVisible();
    // The first read is the page's own load; a second one is a poll.
    await expect.poll(() => reads.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
    await expect(badge(page)).not.toHaveText('● live');
  });
});
