import { join } from 'node:path';

import type { OpenApi } from '../src/features/docs/api';
import { expect, test } from './fixtures';
import { OUT } from './metrics';

test('/docs renders every operation of openapi.json', async ({ page, api }) => {
  const { paths } = await api.json<OpenApi>('/openapi.json');
  const documented = Object.values(paths).reduce((n, operations) => n + Object.keys(operations).length, 0);
  await page.goto('/docs');
  await expect(page.getByRole('article')).toHaveCount(documented);
  await page.screenshot({ path: join(OUT, 'docs.png') });
});
