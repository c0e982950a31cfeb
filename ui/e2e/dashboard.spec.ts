import type { APIRequestContext } from '@playwright/test';
import { badge, expect, postTask, row, submitTask, test } from './fixtures';

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
