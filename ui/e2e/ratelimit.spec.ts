import { expect, test } from './fixtures';

// A service of its own: 3 counted requests per 8 s, instant work.
test.use({
  serviceEnv: { TASKWIRE_WORK_SCALE: '0', TASKWIRE_RATE_LIMIT: '3', TASKWIRE_RATE_WINDOW: '8' },
});

test('a 429 shows a countdown and disables submit until it ends', async ({ page }) => {
  await page.goto('/'); // the feed and the list: 2 of 3
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(page.getByTestId('quota')).toContainText('1 of 3 requests left');

  const submit = page.getByRole('button', { name: 'Submit task' });
  const numbers = page.getByLabel('Numbers', { exact: true });
  await numbers.fill('1 2');
  await submit.click(); // 3 of 3
  await expect(page.locator('.flash')).toContainText('Queued compute_sum task');
  await expect(page.getByTestId('quota')).toContainText('0 of 3 requests left');

  await submit.click(); // refused
  await expect(page.getByTestId('rate-limited')).toContainText(/try again in [1-8] s/);
  await expect(submit).toBeDisabled();
  await expect(page.getByTestId('submit-countdown')).toContainText(/Rate limit reached: wait [1-8] s/);
  await expect(submit).toHaveAccessibleDescription(/Rate limit reached: wait [1-8] s/);
  await expect(page.getByTestId('announcer')).toContainText('Rate limit reached');

  // The countdown runs out and submit works again.
  await expect(submit).toBeEnabled({ timeout: 15_000 });
  await expect(page.getByTestId('rate-limited')).toBeHidden();
  await submit.click();
  await expect(page.locator('.flash')).toContainText('Queued compute_sum task');
});

test('a refused EventSource reconnects when the countdown ends, and the list loads', async ({ page, request }) => {
  // Use up the quota (bounded: at most 3 can pass).
  for (let i = 0; i < 5; i++) {
    if ((await request.get('/tasks?limit=1')).status() === 429) break;
  }
  await page.goto('/');
  // The EventSource is refused; the list load that follows tells why, and starts the countdown.
  await expect(page.getByTestId('rate-limited')).toBeVisible();
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'reconnecting');
  await expect(page.getByTestId('connection')).toContainText(/Reconnecting in \d+ s/);
  await expect(page.getByRole('button', { name: 'Submit task' })).toBeDisabled();

  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live', { timeout: 20_000 });
  await expect(page.locator('table.tasks tbody tr').first()).toBeVisible({ timeout: 15_000 });
  await expect(page.getByRole('button', { name: 'Submit task' })).toBeEnabled();
});
