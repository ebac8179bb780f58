// The console end to end: the local stack with a short simulated fleet
// (`canopy-local demo`), the console it serves, and Debian's Chromium driven
// by playwright-core. Every check compares what the page shows with what the
// API answers. Screenshots and measurements go to e2e/out/.
//
//   CANOPY_LOCAL=target/debug/canopy-local CANOPY_MOTO_SERVER=… node e2e/console.e2e.mjs

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const web = resolve(here, '..');
const repo = resolve(web, '../../..');
const out = join(here, 'out');
mkdirSync(out, { recursive: true });

const LOCAL = process.env.CANOPY_LOCAL ?? join(repo, 'target/debug/canopy-local');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const VEHICLES = 3;
const SIGNAL = 'BMS_PackStatus.PackCurrent';
const HOT_VEHICLE = 'veh-001';

let failures = 0;
const results = [];
function check(name, ok, detail = '') {
  results.push(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  console.log(results.at(-1));
  if (!ok) failures += 1;
}

/** The local stack with a simulated fleet; resolves with the API's base URL once the summary is printed. */
function startStack() {
  const work = mkdtempSync(join(tmpdir(), 'canopy-e2e-'));
  const child = spawn(
    LOCAL,
    ['demo', '--vehicles', String(VEHICLES), '--minutes', '10', '--mqtt-port', '0', '--api-port', '0', '--env-file', join(work, 'env')],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  const ready = new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stack was not up in 8 minutes:\n${stdout}\n${stderr}`)), 8 * 60_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const api = stdout.match(/^API\s+(http:\/\/\S+)/m);
      if (api && stdout.includes('Up until Ctrl-C')) {
        clearTimeout(timer);
        resolveReady(api[1]);
      }
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`canopy-local exited with ${code}:\n${stdout}\n${stderr}`));
    });
  });
  return { child, ready, summary: () => stdout };
}

async function api(base, path, init) {
  const response = await fetch(base + path, init);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

const fixed = (v, d) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));

function gzipBytes(dir) {
  return readdirSync(dir, { recursive: true })
    .filter((f) => /\.(js|css)\.gz$/.test(f))
    .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

async function main() {
  const stack = startStack();
  let browser;
  try {
    const base = await stack.ready;
    console.log(`stack up: ${base}`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const consoleErrors = [];
    page.on('pageerror', (e) => consoleErrors.push(String(e)));

    // ---- fleet page: every vehicle, with the API's values ----
    const fleet = await api(base, '/vehicles?limit=100');
    await page.goto(`${base}/`);
    await page.waitForSelector('table.fleet tbody tr');
    await page.waitForSelector(`tr[data-vehicle="${HOT_VEHICLE}"] td[data-key="alerts"] .badge`, { timeout: 20_000 });
    const rows = await page.$$eval('table.fleet tbody tr', (trs) =>
      trs.map((tr) => ({
        id: tr.getAttribute('data-vehicle'),
        cells: Object.fromEntries([...tr.querySelectorAll('td[data-key]')].map((td) => [td.getAttribute('data-key'), td.textContent.trim()])),
      })),
    );
    check('the fleet page lists every vehicle', rows.length === fleet.vehicles.length && rows.length === VEHICLES, `${rows.length} rows, API ${fleet.vehicles.length}`);
    let mismatches = 0;
    for (const v of fleet.vehicles) {
      const row = rows.find((r) => r.id === v.vehicle_id);
      const expected = {
        soc_pct: fixed(v.soc_pct, 1),
        pack_voltage_v: fixed(v.pack_voltage_v, 1),
        pack_current_a: fixed(v.pack_current_a, 1),
        cell_temp_max_c: fixed(v.cell_temp_max_c, 1),
        speed_kph: fixed(v.speed_kph, 0),
      };
      for (const [k, want] of Object.entries(expected)) if (row?.cells[k] !== want) mismatches += 1;
    }
    check("the fleet page shows the API's values", mismatches === 0, `${mismatches} cells differ`);
    const hot = rows.find((r) => r.id === HOT_VEHICLE);
    check('the overheating vehicle has an alert badge on the fleet page', Number(hot?.cells.alerts) >= 1, `badge ${hot?.cells.alerts}`);
    await page.screenshot({ path: join(out, 'fleet.png') });

    // sorting and filtering
    await page.click('th button:has-text("SoC")');
    await page.click('th button:has-text("SoC")');
    const sorted = await page.$$eval('table.fleet tbody tr', (trs) => trs.map((tr) => Number(tr.querySelector('td[data-key="soc_pct"]').textContent)));
    check('sorting by SoC descending', sorted.every((x, i) => i === 0 || sorted[i - 1] >= x), sorted.join(' '));
    check('the sort is in the URL', (await page.evaluate(() => location.hash)).includes('sort=-soc_pct'));
    await page.fill('input[aria-label="Filter vehicles by id"]', '002');
    const filtered = await page.$$eval('table.fleet tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-vehicle')));
    check('filtering by id', filtered.length === 1 && filtered[0] === 'veh-002', filtered.join(' '));

    // ---- vehicle page: the chart plots the API's points ----
    // A fresh load, so the first-chart mark counts from navigation.
    await page.goto('about:blank');
    const navigationStart = Date.now();
    const firstQuery = page.waitForResponse((r) => r.url().endsWith(`/vehicles/${HOT_VEHICLE}/query`));
    await page.goto(`${base}/#/vehicles/${HOT_VEHICLE}?signals=${SIGNAL},BMS_TemperatureSummary.CellTempMax&range=1h`);
    const answer = await (await firstQuery).json();
    await page.waitForFunction((key) => (window.canopy?.charts.get(key)?.data?.[0]?.length ?? 0) > 0, SIGNAL);
    const firstChartMs = await page.evaluate(() => {
      const mark = performance.getEntriesByName('canopy:first-chart')[0];
      return mark ? mark.startTime : null;
    });
    const plotted = await page.evaluate((key) => {
      const u = window.canopy.charts.get(key);
      return { xs: Array.from(u.data[0]), ys: Array.from(u.data[1]) };
    }, SIGNAL);
    const series = answer.series.find((s) => `${s.message_name}.${s.signal_name}` === SIGNAL);
    const same =
      series.points.length > 0 &&
      plotted.xs.length === series.points.length &&
      series.points.every((p, i) => Math.abs(plotted.xs[i] * 1e6 - p.ts_us) < 1 && plotted.ys[i] === p.value);
    check("the chart's plotted points equal the API's answer", same, `${plotted.xs.length} plotted, ${series.points.length} from the API`);
    check('two stacked charts', (await page.$$('figure.chart-card')).length === 2);
    await page.waitForSelector(`table.alerts tr[data-vehicle="${HOT_VEHICLE}"]`, { timeout: 10_000 }).catch(() => null);
    const vehicleAlerts = await page.$$(`table.alerts tr[data-vehicle="${HOT_VEHICLE}"]`);
    check('the overheating vehicle lists its alert on its page', vehicleAlerts.length >= 1, `${vehicleAlerts.length} rows`);
    const stats = await page.textContent('figure.chart-card .stats');
    const exact = series.stats;
    check(
      "the statistics shown are the API's, over every value",
      exact && (stats ?? '').includes(`mean ${exact.mean.toFixed(2)}`) && (stats ?? '').includes(`of all ${exact.count.toLocaleString('en')} values`),
      stats ?? '',
    );
    await page.screenshot({ path: join(out, 'vehicle.png'), fullPage: true });

    // ---- zoom: a drag across the chart queries the narrower range ----
    // Across the middle half of the drive (the hour's other minutes hold no data).
    const over = await page.$('figure.chart-card .u-over');
    const box = await over.boundingBox();
    const span = await page.evaluate((key) => {
      const u = window.canopy.charts.get(key);
      const xs = u.data[0];
      return { left: u.valToPos(xs[0], 'x'), right: u.valToPos(xs[xs.length - 1], 'x'), width: u.bbox.width / devicePixelRatio };
    }, SIGNAL);
    const x0 = span.left + (span.right - span.left) * 0.25;
    const x1 = span.left + (span.right - span.left) * 0.75;
    const zoomQuery = page.waitForRequest((r) => r.url().endsWith(`/vehicles/${HOT_VEHICLE}/query`) && r.method() === 'POST');
    const zoomAnswer = page.waitForResponse((r) => r.url().endsWith(`/vehicles/${HOT_VEHICLE}/query`));
    await page.mouse.move(box.x + x0, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + x1, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();
    const zoomBody = JSON.parse((await zoomQuery).postData());
    const zoomed = { from: Date.parse(zoomBody.start_time), to: Date.parse(zoomBody.end_time) };
    const before = { from: answer.from_us / 1000, to: answer.to_us / 1000 };
    const ratio = (zoomed.to - zoomed.from) / (before.to - before.from);
    const dragged = (x1 - x0) / span.width;
    check(
      'a zoom queries the zoomed range',
      zoomed.from > before.from && zoomed.to < before.to && Math.abs(ratio - dragged) < 0.01,
      `${(ratio * 100).toFixed(2)} % of the range, ${(dragged * 100).toFixed(2)} % dragged`,
    );
    check('the zoomed range is in the URL', (await page.evaluate(() => location.hash)).includes('from='));
    const zoomedAnswer = await (await zoomAnswer).json();
    await page.waitForFunction(
      ([key, n]) => window.canopy?.charts.get(key)?.data?.[0]?.length === n,
      [SIGNAL, zoomedAnswer.series.find((s) => `${s.message_name}.${s.signal_name}` === SIGNAL).points.length],
    );

    // ---- CSV export: what is shown, exactly ----
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Export CSV")')]);
    const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
    const expectedRows = zoomedAnswer.series.flatMap((s) => s.points.map((p) => `${s.message_name},${s.signal_name},${s.unit},${p.ts_us},${p.value}`));
    const csvRows = csv.slice(1).map((line) => {
      const f = line.split(',');
      return `${f[0]},${f[1]},${f[2]},${f[3]},${f[5]}`;
    });
    check(
      "the CSV export equals the API's points",
      csv[0] === 'message,signal,unit,ts_us,time,value' && csvRows.length > 0 && JSON.stringify(csvRows) === JSON.stringify(expectedRows),
      `${csvRows.length} rows, ${expectedRows.length} points`,
    );
    const zoomedPoints = zoomedAnswer.series.find((s) => `${s.message_name}.${s.signal_name}` === SIGNAL);
    check('zooming in shows more detail', zoomedPoints.source_points > 0 && zoomedPoints.points.length > 0, `${zoomedPoints.points.length} points from ${zoomedPoints.source_points}`);
    const [png] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Export PNG")')]);
    const pngBytes = readFileSync(await png.path());
    check('the PNG export is a PNG', pngBytes.subarray(1, 4).toString() === 'PNG' && pngBytes.length > 2000, `${pngBytes.length} bytes`);

    // ---- trips: the API's, and a click charts one ----
    await page.waitForSelector('table.trips tbody tr', { timeout: 20_000 });
    const tripsShown = await page.$$eval('table.trips tbody tr', (trs) =>
      trs.map((tr) => ({ start: Number(tr.getAttribute('data-trip')), km: tr.querySelector('td[data-key="distance_km"]').textContent.trim() })),
    );
    const nowMin = Math.ceil(Date.now() / 60_000) * 60_000;
    const apiTrips = (await api(base, `/vehicles/${HOT_VEHICLE}/trips?from=${new Date(nowMin - 7 * 86_400_000).toISOString()}&to=${new Date(nowMin).toISOString()}`)).trips;
    const sameTrips =
      apiTrips.length >= 1 &&
      tripsShown.length === apiTrips.length &&
      apiTrips.every((t) => tripsShown.some((r) => r.start === t.start_us && r.km === `${fixed(t.distance_km, 1)} km`));
    check("the vehicle's trips are the API's", sameTrips, `${tripsShown.length} shown, ${apiTrips.length} from the API, ${apiTrips.map((t) => fixed(t.distance_km, 2)).join(' ')} km`);
    const trip = apiTrips[apiTrips.length - 1];
    const tripQuery = page.waitForRequest((r) => r.url().endsWith(`/vehicles/${HOT_VEHICLE}/query`) && r.method() === 'POST');
    await page.click(`table.trips tr[data-trip="${trip.start_us}"] button`);
    const tripBody = JSON.parse((await tripQuery).postData());
    const tripFrom = Date.parse(tripBody.start_time);
    const tripTo = Date.parse(tripBody.end_time);
    check(
      'a click on a trip charts the trip',
      tripFrom <= trip.start_us / 1000 && tripTo >= trip.end_us / 1000 && tripTo - tripFrom < (trip.end_us - trip.start_us) / 1000 + 5 * 60_000,
      `${tripBody.start_time} – ${tripBody.end_time} for ${trip.start} – ${trip.end}`,
    );
    await page.waitForSelector(`table.trips tr[data-trip="${trip.start_us}"][aria-current="true"]`, { timeout: 10_000 }).catch(() => null);
    check('the charted trip is marked', (await page.$(`table.trips tr[data-trip="${trip.start_us}"][aria-current="true"]`)) !== null);
    await page.screenshot({ path: join(out, 'vehicle-trip.png'), fullPage: true });

    // ---- the live stream: pushed, not polled; polling again when it is down ----
    await page.goto(`${base}/`);
    await page.waitForSelector('table.fleet tbody tr');
    await page.waitForSelector('.live-badge[data-status="live"]', { timeout: 15_000 }).catch(() => null);
    check('the console is on the live stream', (await page.getAttribute('.live-badge', 'data-status')) === 'live');
    const moto = stack.summary().match(/^moto \(.*\)\s+(http:\/\/\S+)/m)?.[1];
    const made = JSON.parse(
      execFileSync(join(dirname(LOCAL), 'device-keys'), ['--endpoint', moto, '--table', 'DeviceKeysTable', 'create', '--device', 'veh-002'], {
        encoding: 'utf8',
      }),
    );
    const polls = [];
    const countPolls = (r) => {
      if (new URL(r.url()).pathname === '/vehicles') polls.push(r.url());
    };
    page.on('request', countPolls);
    const pushed = { v: 1, vehicle_id: 'veh-002', ts: new Date().toISOString(), seq: 9_000_000, soc_pct: 55.5, pack_voltage_v: 371.0,
      pack_current_a: 12.0, cell_voltage_min_v: 3.9, cell_voltage_max_v: 3.95, cell_temp_min_c: 25.0, cell_temp_max_c: 31.0, speed_kph: 123.4 };
    const posted = await fetch(`${base}/ingest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': made.key },
      body: JSON.stringify(pushed),
    });
    const pushStarted = Date.now();
    const seen = await page
      .waitForFunction(() => document.querySelector('tr[data-vehicle="veh-002"] td[data-key="speed_kph"]')?.textContent?.trim() === '123', null, { timeout: 15_000 })
      .then(() => true)
      .catch(() => false);
    check(
      'a state posted to /ingest reaches the fleet page pushed, without a poll',
      posted.status === 202 && seen && polls.length === 0,
      `ingest ${posted.status}, shown after ${Date.now() - pushStarted} ms, ${polls.length} polls`,
    );
    page.off('request', countPolls);
    await page.routeWebSocket(/\/live/, (ws) => ws.close());
    const reads = [];
    const countReads = (r) => {
      if (new URL(r.url()).pathname === '/vehicles') reads.push(Date.now());
    };
    page.on('request', countReads);
    await page.goto(`${base}/`);
    await page.waitForSelector('table.fleet tbody tr');
    // The first read is the page's own load; a second one is a poll.
    const deadline = Date.now() + 15_000;
    while (reads.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    page.off('request', countReads);
    check(
      'without the live stream the console polls',
      reads.length >= 2 && (await page.getAttribute('.live-badge', 'data-status')) !== 'live',
      `${reads.length} reads of /vehicles, badge ${await page.getAttribute('.live-badge', 'data-status')}`,
    );
    await page.unrouteAll();

    // ---- alerts page ----
    await page.goto(`${base}/#/alerts`);
    await page.waitForSelector('table.alerts tbody tr');
    const fleetAlerts = await page.$$eval('table.alerts tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-vehicle')));
    check('the alerts page shows the overheating vehicle', fleetAlerts.includes(HOT_VEHICLE), fleetAlerts.join(' '));
    await page.screenshot({ path: join(out, 'alerts.png') });

    // ---- stations: availability at a glance, one station's slots and history ----
    const stationsApi = await api(base, '/stations?limit=100');
    await page.goto(`${base}/#/stations`);
    await page.waitForSelector('li.station-card');
    const cards = await page.$$eval('li.station-card', (lis) =>
      lis.map((li) => ({
        id: li.getAttribute('data-station'),
        level: li.getAttribute('data-availability'),
        available: li.querySelector('[data-key="available"]').textContent.trim(),
      })),
    );
    check('the stations page lists every station', cards.length === stationsApi.stations.length && cards.length === 3, `${cards.length} cards, API ${stationsApi.stations.length}`);
    const wrong = stationsApi.stations.filter((st) => cards.find((c) => c.id === st.station_id)?.available !== String(st.batteries_available));
    check("the stations page shows the API's charged batteries", wrong.length === 0, wrong.map((w) => w.station_id).join(' '));
    const emptyFirst = cards.findIndex((c) => c.level !== 'empty');
    check('stations without a charged battery come first', cards.slice(emptyFirst < 0 ? cards.length : emptyFirst).every((c) => c.level !== 'empty'), cards.map((c) => `${c.id}:${c.level}`).join(' '));
    await page.screenshot({ path: join(out, 'stations.png') });
    const busiest = stationsApi.stations.find((st) => st.station_id === 'st-003') ?? stationsApi.stations[0];
    const stationHistory = page.waitForResponse((r) => r.url().includes(`/stations/${busiest.station_id}/history/batteries_available`));
    await page.goto(`${base}/#/stations/${busiest.station_id}`);
    const chartAnswer = await (await stationHistory).json();
    await page.waitForSelector('ol.slots li.slot');
    const tiles = await page.$$('ol.slots li.slot');
    check("a station's page shows a tile per slot", tiles.length === busiest.slots, `${tiles.length} tiles, ${busiest.slots} slots`);
    const stationKey = `${busiest.station_id}.batteries_available`;
    await page.waitForFunction((key) => (window.canopy?.charts.get(key)?.data?.[0]?.length ?? 0) > 0, stationKey, { timeout: 15_000 }).catch(() => null);
    const stationPlotted = await page.evaluate((key) => window.canopy.charts.get(key)?.data?.[0]?.length ?? 0, stationKey);
    check("a station's chart plots the API's points", chartAnswer.points.length > 0 && stationPlotted === chartAnswer.points.length, `${stationPlotted} plotted, ${chartAnswer.points.length} from the API`);
    const stationAlerts = await api(base, `/stations/${busiest.station_id}/alerts`);
    await page
      .waitForFunction((n) => document.querySelectorAll('section.station table.alerts tbody tr').length === n, stationAlerts.alerts.length, { timeout: 10_000 })
      .catch(() => null);
    const alertRows = await page.$$('section.station table.alerts tbody tr');
    check("a station's page lists its alerts", alertRows.length === stationAlerts.alerts.length, `${alertRows.length} rows, API ${stationAlerts.alerts.length}`);
    await page.screenshot({ path: join(out, 'station.png'), fullPage: true });

    // ---- API docs, from the binary ----
    await page.goto(`${base}/docs`);
    await page.waitForSelector('article.operation');
    const operations = await page.$$('article.operation');
    const documented = Object.values((await api(base, '/openapi.json')).paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    check('/docs renders every operation of openapi.json', operations.length === documented, `${operations.length} of ${documented}`);
    await page.screenshot({ path: join(out, 'docs.png') });

    // ---- light theme ----
    await page.goto(`${base}/`);
    await page.waitForSelector('table.fleet tbody tr');
    await page.click('button[aria-label^="Switch to the light"]');
    check('the light theme applies', (await page.evaluate(() => document.documentElement.dataset.theme)) === 'light');
    await page.screenshot({ path: join(out, 'fleet-light.png') });
    await page.click('button[aria-label^="Switch to the dark"]');

    // ---- a failing API is a readable message, not a blank page ----
    const listing = (url) => url.pathname === '/vehicles';
    await page.route(listing, (route) =>
      route.fulfill({
        status: 502,
        contentType: 'application/json',
        body: JSON.stringify({ error: { status: 502, message: 'a table read failed (request r-42; the log has the details)', request_id: 'r-42' } }),
      }),
    );
    await page.goto(`${base}/`);
    await page.waitForSelector('[role="alert"]');
    const error = await page.textContent('[role="alert"]');
    check('a failing API shows a readable error', /Could not load the fleet\. a table read failed/.test(error ?? ''), error ?? '');
    await page.screenshot({ path: join(out, 'error.png') });
    await page.unroute(listing);

    // ---- phone width ----
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/#/vehicles/${HOT_VEHICLE}?signals=${SIGNAL}&range=1h`);
    await page.waitForFunction((key) => (window.canopy?.charts.get(key)?.data?.[0]?.length ?? 0) > 0, SIGNAL);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('the vehicle page fits a phone', overflow <= 0, `${overflow} px wider than the screen`);
    await page.screenshot({ path: join(out, 'vehicle-phone.png'), fullPage: true });

    check('no script errors', consoleErrors.length === 0, consoleErrors.join(' | '));

    const size = gzipBytes(join(web, 'dist'));
    const metrics = {
      js_css_gzip_bytes: size,
      first_chart_ms: firstChartMs === null ? null : Math.round(firstChartMs),
      navigation_to_first_chart_wall_ms: Date.now() - navigationStart,
    };
    writeFileSync(join(out, 'metrics.json'), JSON.stringify(metrics, null, 2));
    console.log(`JS + CSS: ${(size / 1024).toFixed(1)} KB gzip (goal < 300 KB)`);
    console.log(`navigation to first drawn chart: ${metrics.first_chart_ms} ms (goal < 1000 ms)`);
    check('JS + CSS under 300 KB gzip', size < 300 * 1024);
  } finally {
    await browser?.close();
    stack.child.kill('SIGINT');
  }
  if (failures > 0) {
    console.error(`\n${failures} console check(s) failed; screenshots in ${out}`);
    process.exit(1);
  }
  console.log(`\nevery console check passed (${results.length}); screenshots in ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
