// Gzips every built file beside itself (name.gz): the API serves the
// compressed bytes to browsers that accept them, with no work per request.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

let raw = 0;
let zipped = 0;
for (const path of walk('dist')) {
  if (path.endsWith('.gz')) continue;
  const body = readFileSync(path);
  const gz = gzipSync(body, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(`${path}.gz`, gz);
  raw += body.length;
  zipped += gz.length;
}
console.log(`console: ${(raw / 1024).toFixed(1)} KB, ${(zipped / 1024).toFixed(1)} KB gzipped`);
