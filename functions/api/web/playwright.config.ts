// The console end to end: Debian's Chromium (no browser download) against the
// local stack with a simulated fleet, which e2e/global-setup.ts starts once.
//
//   CANOPY_LOCAL=…/canopy-local CANOPY_MOTO_SERVER=…/moto_server CHROMIUM=/usr/bin/chromium npx playwright test

import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'e2e/out/results',
  globalSetup: './e2e/global-setup.ts',
  // One stack, whose state some tests change (a pushed state): one test at a time.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    baseURL: process.env.CANOPY_E2E_API,
    viewport: { width: 1400, height: 900 },
    acceptDownloads: true,
    // The tests format times as the console does: both in UTC.
    timezoneId: 'UTC',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
