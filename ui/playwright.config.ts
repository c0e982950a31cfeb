import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests in headless Chromium against the real service, which each test worker
 * starts itself (e2e/fixtures.ts). Needs `npm run build` first (`npm run e2e` does it) and
 * the service's virtualenv (`make` at the repository root creates `.venv`).
 *
 * The browser is Debian's (`apt-get install chromium`): Playwright's own download is not used.
 */
export default defineConfig({
  testDir: 'e2e',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  // Each test file runs in one worker against a service of its own (its settings: e2e/fixtures.ts
  // and the file's test.use); two files at a time.
  workers: 2,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: 'list',
  outputDir: 'test-results',
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
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
    },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
});
