import type { Page } from '@playwright/test';
import { FAST, badge, expect, numberIn, postTask, row, statusCount, submitTask, test, waitForEnd } from './fixtures';

// A service of its own (another setting makes another worker), so its figures are this file's.
test.use({ serviceEnv: { ...FAST, TASKWIRE_CONCURRENCY: '4' } });

/** The chart of finished tasks: each series' total over the window, as the chart holds them. */
async function finishedSums(page: Page): Promise<number[]> {
  const sums = await page.getByTestId('chart-finished').locator('.time-chart').getAttribute('data-sums');
  return (sums ?? '').split(',').map(Number);
}

test('the overview shows counts and charts of the last 15 minutes from the first load', async ({ page, request }) => {
  const done = await postTask(request, 'compute_sum', { numbers: [1, 2] });
  const failed = await postTask(request, 'unstable_task', { failure_rate: 1 });
  await waitForEnd(request, done);
  await waitForEnd(request, failed);

  await page.goto('/');
  const overview = page.getByTestId('overview');
  await expect(overview.getByRole('heading', { name: 'Overview' })).toBeVisible();
  // Counts by status, read from GET /stats before any event could move them.
  await expect(statusCount(page, 'completed')).toHaveAttribute('data-count', /^[1-9]\d*$/);
  await expect(statusCount(page, 'failed')).toHaveAttribute('data-count', /^[1-9]\d*$/);
  await expect(statusCount(page, 'completed')).toContainText('completed');

  // Three charts, each a figure with a caption, a drawn chart, a legend and a data table.
  for (const [id, legend] of [
    ['chart-finished', ['completed', 'failed', 'cancelled']],
    ['chart-queue', ['queued', 'processing']],
    ['chart-run-time', ['p50', 'p95']],
  ] as const) {
    const figure = page.getByTestId(id);
    await expect(figure.locator('canvas').first()).toBeVisible();
    await expect(figure.locator('.chart-legend li')).toHaveText([...legend]);
    await expect(figure.getByTestId(`${id}-table`).locator('tbody tr')).toHaveCount(60);
    await expect(figure.locator('.time-chart')).toHaveAttribute('role', 'img');
  }
  await expect(page.getByTestId('chart-finished-summary')).toContainText(/In the last 15 minutes: [1-9]\d* completed, [1-9]\d* failed/);
  await expect(page.getByTestId('chart-run-time-summary')).toContainText(/\d+ runs?, p50 ≤ .+, p95 ≤ .+/);
  expect((await finishedSums(page))[0]).toBeGreaterThanOrEqual(1);

  // The table opens, and says the same as the chart.
  const finished = page.getByTestId('chart-finished');
  await finished.getByText('Data table').click();
  await expect(finished.getByRole('columnheader', { name: 'completed' })).toBeVisible();
});

test('a completed task moves the counts and the chart at once, from its event', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(page.getByTestId('chart-finished-summary')).toBeVisible();
  // From now on /stats is refused: only the feed's events can move the figures.
  await page.route('**/stats', (route) => route.abort());
  const completed = await numberIn(statusCount(page, 'completed'), 'data-count');
  const [charted] = await finishedSums(page);

  const id = await submitTask(page, 'compute_sum', async () => {
    await page.getByLabel('Numbers', { exact: true }).fill('4 5 6');
  });
  await expect(badge(page, id)).toHaveText(/completed/);
  await expect(statusCount(page, 'completed')).toHaveAttribute('data-count', String(completed + 1));
  await expect.poll(async () => (await finishedSums(page))[0]).toBe(charted! + 1);
  await expect(page.getByTestId('chart-finished-summary')).toContainText(`${charted! + 1} completed`);
  // and so does the data table, interval by interval
  const completedColumn = page.getByTestId('chart-finished-table').locator('tbody tr td:nth-of-type(1)');
  await expect
    .poll(async () => (await completedColumn.allTextContents()).reduce((sum, n) => sum + Number(n), 0))
    .toBe(charted! + 1);
  await expect(page.getByTestId('chart-run-time')).toContainText(/compute_sum/);
});

test('the timeline shows both attempts of a retried task, live', async ({ page, request }) => {
  const id = await postTask(request, 'unstable_task', { failure_rate: 1 });
  await page.goto('/');
  await expect(badge(page, id)).toHaveText(/failed/);
  await row(page, id).getByRole('button', { name: /^Details of unstable_task/ }).click();
  const dialog = page.getByRole('dialog');
  const attempts = dialog.getByTestId('timeline-attempt');
  await expect(attempts).toHaveCount(1);
  await expect(attempts.first()).toHaveAttribute('data-outcome', 'failed');

  // Retried from the panel: attempt 2 comes in through the feed while the panel is open.
  await dialog.getByRole('button', { name: /^Retry unstable_task/ }).click();
  await expect(attempts).toHaveCount(2);
  await expect(attempts.nth(1)).toHaveAttribute('data-outcome', 'failed');

  const first = attempts.nth(0);
  await expect(first.getByRole('heading')).toContainText('Attempt 1');
  await expect(first).toContainText('Queued');
  await expect(first).toContainText('Started');
  await expect(first.getByTestId('timeline-error')).toHaveText(
    'TaskFailedError: simulated failure (failure_rate=1.0)',
  );
  await expect(first.locator('time').first()).toHaveAttribute('datetime', /^\d{4}-\d\d-\d\dT/);
  const second = attempts.nth(1);
  await expect(second.getByRole('heading')).toContainText('Attempt 2');
  await expect(second.getByTestId('timeline-error')).toContainText('TaskFailedError');

  // Opened afresh, the history alone tells the same.
  await dialog.getByRole('button', { name: 'Close details' }).click();
  await row(page, id).getByRole('button', { name: /^Details of unstable_task/ }).click();
  await expect(dialog.getByTestId('timeline-attempt')).toHaveCount(2);
  await expect(dialog.getByTestId('timeline-error')).toHaveCount(2);
});
