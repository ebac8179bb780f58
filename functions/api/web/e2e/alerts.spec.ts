import { join } from 'node:path';

import { expect, test } from './fixtures';
import { OUT } from './metrics';
import { readTable, tableWith } from './screen';

test('the alerts page shows the overheating vehicle', async ({ page }) => {
  await page.goto('/#/alerts');
  const table = tableWith(page, 'Vehicle');
  await expect(table.getByRole('link', { name: 'veh-001' }).first()).toBeVisible();
  expect((await readTable(table)).map((r) => r.Vehicle)).toContain('veh-001');
  await page.screenshot({ path: join(OUT, 'alerts.png') });
});
