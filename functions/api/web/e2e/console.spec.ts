// What holds on every page: the theme, a failing API, a phone's width.

import { join } from 'node:path';

import { expect, test } from './fixtures';
import { OUT } from './metrics';
import { chart, drawn } from './screen';

test('the light theme applies', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('row', { name: /veh-001/ })).toBeVisible();
  await page.getByRole('button', { name: /^Switch to the light/ }).click();
  // styles.css: the light theme's background.
  await expect(page.locator('body')).toHaveCSS('background-color', 'rgb(247, 249, 251)');
  await page.screenshot({ path: join(OUT, 'fleet-light.png') });
  await page.getByRole('button', { name: /^Switch to the dark/ }).click();
  await expect(page.locator('body')).toHaveCSS('background-color', 'rgb(15, 20, 25)');
});

test('a failing API shows a readable error', async ({ page }) => {
  await page.route(
    (url) => url.pathname === '/vehicles',
    (route) =>
      route.fulfill({
        status: 502,
        contentType: 'application/json',
        body: JSON.stringify({ error: { status: 502, message: 'a table read failed (request r-42; the log has the details)', request_id: 'r-42' } }),
      }),
  );
  await page.goto('/');
  await expect(page.getByRole('alert')).toHaveText(/Could not load the fleet\. a table read failed/);
  await page.screenshot({ path: join(OUT, 'error.png') });
});

test('the vehicle page fits a phone', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/#/vehicles/veh-001?signals=BMS_PackStatus.PackCurrent&range=1h');
  await expect.poll(async () => (await drawn(chart(page, 'BMS_PackStatus.PackCurrent'))).columns.length, { timeout: 15_000 }).toBeGreaterThan(0);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, 'px wider than the screen').toBeLessThanOrEqual(0);
  await page.screenshot({ path: join(OUT, 'vehicle-phone.png'), fullPage: true });
});
