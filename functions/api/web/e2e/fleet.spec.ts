import { join } from 'node:path';

import type { VehicleState } from '../src/api/types';
import { expect, test } from './fixtures';
import { OUT } from './metrics';
import { fixed, readTable, tableWith } from './screen';
import { VEHICLES } from './stack';

const HOT_VEHICLE = 'veh-001';

test.describe('the fleet page', () => {
  test.beforeEach(async ({ page }) => {
    await page.goto('/');
    await expect(page.getByRole('row', { name: new RegExp(HOT_VEHICLE) })).toBeVisible();
  });

  test("lists every vehicle with the API's values", async ({ page, api }) => {
    const fleet = await api.json<{ vehicles: VehicleState[] }>('/vehicles?limit=100');
    const rows = await readTable(tableWith(page, 'Last message'));
    expect(rows).toHaveLength(VEHICLES);
    expect(fleet.vehicles).toHaveLength(VEHICLES);
    for (const v of fleet.vehicles) {
      expect(rows.find((r) => r.Vehicle === v.vehicle_id)).toMatchObject({
        'SoC (%)': fixed(v.soc_pct, 1),
        'Pack voltage (V)': fixed(v.pack_voltage_v, 1),
        'Pack current (A)': fixed(v.pack_current_a, 1),
        'Hottest cell (°C)': fixed(v.cell_temp_max_c, 1),
        'Speed (km/h)': fixed(v.speed_kph, 0),
      });
    }
  });

  test('shows how many vehicles are doing what, as the API counts them', async ({ page, api }) => {
    const counts = await api.json<{ total: number; driving: number; charging: number; parked: number; silent: number }>(
      '/fleet/counts',
    );
    expect(counts.total).toBe(VEHICLES);
    expect(counts.driving + counts.charging + counts.parked + counts.silent).toBe(VEHICLES);
    const byStatus = page.getByLabel('Vehicles by status');
    await expect(byStatus.getByRole('definition').first()).toHaveText(String(VEHICLES));
  });

  test('the overheating vehicle has an alert badge', async ({ page }) => {
    const row = page.getByRole('row', { name: new RegExp(HOT_VEHICLE) });
    const badge = row.getByRole('link', { name: /recent alerts?$/ });
    await expect(badge).toBeVisible({ timeout: 20_000 });
    expect(Number(await badge.textContent())).toBeGreaterThanOrEqual(1);
    await page.screenshot({ path: join(OUT, 'fleet.png') });
  });

  test('counts the overheating vehicle alerting, and shows it among the alerting ones', async ({ page, api }) => {
    const alerting = async () => (await api.json<{ alerting: number }>('/fleet/counts')).alerting;
    await expect.poll(alerting, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    await page.getByRole('button', { name: 'Show only alerting vehicles' }).click();
    await expect(page).toHaveURL(/status=alerting/);
    await expect
      .poll(async () => (await readTable(tableWith(page, 'Last message'))).map((r) => r.Vehicle), { timeout: 20_000 })
      .toContain(HOT_VEHICLE);
  });

  test('sorts by SoC, descending on a second click, and keeps the sort in the URL', async ({ page }) => {
    const soc = page.getByRole('button', { name: 'SoC (%)' });
    await soc.click();
    await soc.click();
    await expect(page.getByRole('columnheader', { name: 'SoC (%)' })).toHaveAttribute('aria-sort', 'descending');
    const shown = (await readTable(tableWith(page, 'Last message'))).map((r) => Number(r['SoC (%)']));
    expect(shown).toEqual([...shown].sort((a, b) => b - a));
    expect(new URL(page.url()).hash).toContain('sort=-soc_pct');
  });

  test('searches by id prefix', async ({ page }) => {
    await page.getByRole('searchbox', { name: 'Search vehicles by id prefix' }).fill('veh-002');
    await expect.poll(async () => (await readTable(tableWith(page, 'Last message'))).map((r) => r.Vehicle)).toEqual(['veh-002']);
  });
});
