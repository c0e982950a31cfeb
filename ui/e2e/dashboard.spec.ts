import path from 'node:path';
import type { APIRequestContext, Page } from '@playwright/test';
import { badge, expect, postTask, row, submitTask, test } from './fixtures';
import { UI_DIR } from './server';

// The tests of this file run in order in one worker, against one service (see fixtures.ts);
// each makes the tasks it looks at (a failed test restarts the worker, and the service).

const post = (request: APIRequestContext, taskType: string, parameters: object, priority = 'normal') =>
  postTask(request, taskType, parameters, { priority });

test('a compute_sum submitted through the form completes with the right sum', async ({ dashboard: page }) => {
  const numbers = page.getByLabel('Numbers', { exact: true });
  await expect(numbers).toHaveAccessibleDescription(/1–10000 numbers/);
  const id = await submitTask(page, 'compute_sum', async () => {
    await numbers.fill('1, 2, 3.5 10');
  });
  await expect(badge(page, id)).toHaveText(/completed/);
  await expect(row(page, id).getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100');

  // The detail panel, by keyboard: Enter opens it, Escape closes it and focus comes back.
  const details = row(page, id).getByRole('button', { name: /^Details of compute_sum/ });
  await details.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByTestId('detail-result')).toContainText('"sum": 16.5');
  await expect(dialog.getByTestId('detail-parameters')).toContainText('3.5');
  await expect(dialog).toContainText('Finished');
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(details).toBeFocused();
});

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

test('a failed unstable_task is retried with one click', async ({ dashboard: page }) => {
  const id = await submitTask(page, 'unstable_task', async () => {
    await expect(page.getByLabel('Failure Rate')).toHaveValue('0.5');
    await page.getByLabel('Failure Rate').fill('1');
  });
  await expect(badge(page, id)).toHaveText(/failed/);
  await row(page, id).getByRole('button', { name: /^Retry unstable_task/ }).click();
  await expect(row(page, id).locator('.attempt')).toHaveText('attempt 2');
  await expect(badge(page, id)).toHaveText(/failed/);
  await row(page, id).getByRole('button', { name: /^Details of unstable_task/ }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByTestId('detail-error')).toContainText('TaskFailedError');
  await expect(dialog).toContainText('Attempt2');
  await dialog.getByRole('button', { name: 'Close details' }).click();
  await expect(dialog).toBeHidden();
});

test('field errors from the problem JSON show next to their fields', async ({ dashboard: page }) => {
  await page.getByLabel('Task type').selectOption('compute_sum');
  const numbers = page.getByLabel('Numbers', { exact: true });
  await numbers.fill('');
  await page.getByRole('button', { name: 'Submit task' }).click();
  await expect(numbers).toHaveAttribute('aria-invalid', 'true');
  await expect(numbers).toHaveAccessibleDescription(/at least 1 item/);
  await expect(numbers).toBeFocused();

  await numbers.fill('1, two, 3');
  await page.getByRole('button', { name: 'Submit task' }).click();
  await expect(numbers).toHaveAccessibleDescription(/Item 2 \(“two”\): Input should be a valid number/);

  await page.getByLabel('Task type').selectOption('batch_email');
  const recipients = page.getByLabel('Recipients');
  await recipients.fill('ada@example.com, not-an-email');
  await page.getByLabel('Subject').fill('Hello');
  await page.getByRole('button', { name: 'Submit task' }).click();
  await expect(recipients).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('.field.has-error')).toHaveCount(1);
  await expect(page.locator('.field.has-error .field-errors')).toHaveText(
    /Item 2 \(“not-an-email”\): should be local@domain\.tld/,
  );

  // Corrected, it goes through and the error goes away.
  await recipients.fill('ada@example.com, grace@example.com');
  await page.getByRole('button', { name: 'Submit task' }).click();
  await expect(page.locator('.flash')).toContainText('Queued batch_email task');
  await expect(recipients).toHaveAttribute('aria-invalid', 'false');
});

test('filters by status and by type', async ({ dashboard: page, request }) => {
  await post(request, 'unstable_task', { failure_rate: 1 });
  await post(request, 'compute_sum', { numbers: [1] });
  await expect(page.locator('tr[data-status="failed"]').first()).toBeVisible();
  await expect(page.locator('tr[data-status="completed"]').first()).toBeVisible();
  await page.getByLabel('Status').selectOption('failed');
  await expect(page.locator('table.tasks tbody tr')).not.toHaveCount(0);
  await expect(page.locator('table.tasks tbody tr:not([data-status="failed"])')).toHaveCount(0);
  await page.getByLabel('Status').selectOption('');
  await page.getByLabel('Type', { exact: true }).selectOption('compute_sum');
  await expect(page.locator('table.tasks tbody tr').first()).toContainText('compute_sum');
  await expect(page.locator('table.tasks tbody tr', { hasNotText: 'compute_sum' })).toHaveCount(0);
});

test('works at phone width without sideways scrolling', async ({ page, request }) => {
  await post(request, 'find_longest_consecutive_letters', { string: 'aabbbbcc' });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(page.locator('table.tasks tbody tr').first()).toBeVisible();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(390);
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
  if (docs) {
    test.setTimeout(120_000);
    await spreadOverIntervals(page, request, 4);
  }
  const sum = await post(request, 'compute_sum', { numbers: [4, 8, 15, 16, 23, 42] }, 'high');
  const flaky = await post(request, 'unstable_task', { failure_rate: 1 });
  const doomed = await post(request, 'data_processing', { rows: 250_000 });
  expect((await request.delete(`/tasks/${doomed}`)).status()).toBe(200);
  await expect(badge(page, sum)).toHaveText(/completed/);
  await expect(badge(page, flaky)).toHaveText(/failed/);
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
