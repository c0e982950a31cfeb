import path from 'node:path';
import type { APIRequestContext, Page } from '@playwright/test';
import { badge, expect, FAST, postTask, row, submitTask, test } from './fixtures';
import { UI_DIR } from './server';

// Tests that act on tasks while they run, on a service of their own whose work is long
// (unscaled: a 20-section report runs 24 s). Under FAST's scale it ran 3.6 s, and a browser
// on a loaded machine sometimes reached the Cancel button after the task had finished.
test.use({ serviceEnv: { ...FAST, TASKWIRE_WORK_SCALE: '1' } });

const post = (request: APIRequestContext, taskType: string, parameters: object, priority = 'normal') =>
  postTask(request, taskType, parameters, { priority });

test('a running task is cancelled with one click', async ({ dashboard: page }) => {
  const id = await submitTask(page, 'generate_report', async () => {
    await page.getByLabel('Title').fill('To be cancelled');
    await page.getByLabel('Sections').fill('20');
  });
  await expect(badge(page, id)).toHaveText(/queued|processing/);
  await row(page, id).getByRole('button', { name: /^Cancel generate_report/ }).click();
  await expect(badge(page, id)).toHaveText(/cancelled/);
  // a cancelled task offers a retry instead
  await expect(row(page, id).getByRole('button', { name: /^Retry/ })).toBeVisible();
});

/**
 * Gives the overview's charts some history: a few tasks in each of `intervals` 15-second
 * intervals, waiting (on the chart's own table) for each new interval to begin.
 */
async function spreadOverIntervals(page: Page, request: APIRequestContext, intervals: number) {
  const newest = page.getByTestId('chart-finished-table').locator('tbody tr').last().locator('time');
  for (let i = 0; i < intervals; i++) {
    const started = await newest.getAttribute('datetime');
    for (let n = 0; n <= i % 3; n++) await post(request, 'compute_sum', { numbers: [n, i] });
    await post(request, 'unstable_task', { failure_rate: 0.5 });
    await post(request, 'generate_report', { title: `Digest ${i}`, sections: 2 + i });
    await expect(newest).not.toHaveAttribute('datetime', started ?? '', { timeout: 20_000 });
  }
}

test('dashboard screenshot with tasks in different states', async ({ dashboard: page, request }) => {
  const docs = process.env.UI_SCREENSHOT;
  test.setTimeout(docs ? 180_000 : 60_000);
  if (docs) await spreadOverIntervals(page, request, 4);
  const sum = await post(request, 'compute_sum', { numbers: [4, 8, 15, 16, 23, 42] }, 'high');
  const flaky = await post(request, 'unstable_task', { failure_rate: 1 });
  const doomed = await post(request, 'data_processing', { rows: 250_000 });
  expect((await request.delete(`/tasks/${doomed}`)).status()).toBe(200);
  // (unscaled, these two take 5 and 10 s)
  await expect(badge(page, sum)).toHaveText(/completed/, { timeout: 20_000 });
  await expect(badge(page, flaky)).toHaveText(/failed/, { timeout: 20_000 });
  await expect(badge(page, doomed)).toHaveText(/cancelled/);

  // Three run at once (TASKWIRE_CONCURRENCY=3), so the fourth waits.
  const running = [];
  for (const title of ['Weekly digest', 'Audit trail', 'Usage summary']) {
    running.push(await post(request, 'generate_report', { title, sections: 20 }));
  }
  const waiting = await post(request, 'image_processing', { count: 50, operation: 'thumbnail' }, 'low');
  await expect(row(page, running[0]!).getByRole('progressbar')).toHaveAttribute('aria-valuenow', /^[2-9]\d$/);
  await expect(badge(page, waiting)).toHaveText(/queued/);
  await expect(page.getByTestId('chart-finished-summary')).toContainText(/[1-9]\d* completed/);
  await expect(page.getByTestId('count-processing')).toHaveAttribute('data-count', '3');
  // Into test-results/ on every run; into the docs only when asked (`npm run e2e:docs`), so a
  // plain test run leaves the work tree as it was.
  await page.setViewportSize({ width: 1280, height: 1060 });
  await page.screenshot({ path: test.info().outputPath('ui.png') });
  if (docs) await page.screenshot({ path: path.resolve(UI_DIR, docs) });
});
