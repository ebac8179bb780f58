import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect, test } from './fixtures';
import { record } from './metrics';

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../dist');

test('the console weighs under 300 KB of gzipped JS and CSS', () => {
  const bytes = readdirSync(DIST, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(js|css)\.gz$/.test(f))
    .reduce((sum, f) => sum + statSync(join(DIST, f)).size, 0);
  record({ js_css_gzip_bytes: bytes });
  expect(bytes).toBeGreaterThan(0);
  expect(bytes).toBeLessThan(300 * 1024);
});
