import { expect, test } from './fixtures';

// A service of its own: 3 counted requests per 15 s, instant work. The window is long enough
// for a loaded machine to reach the refused submit inside it.
test.use({
  serviceEnv: { TASKWIRE_WORK_SCALE: '0', TASKWIRE_RATE_LIMIT: '3', TASKWIRE_RATE_WINDOW: '15' },
});

const SECONDS = '([1-9]|1[0-5]) s';

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
  await expect(page.getByTestId('rate-limited')).toContainText(new RegExp(`try again in ${SECONDS}`));
  await expect(submit).toBeDisabled();
  await expect(page.getByTestId('submit-countdown')).toContainText(new RegExp(`Rate limit reached: wait ${SECONDS}`));
  await expect(submit).toHaveAccessibleDescription(new RegExp(`Rate limit reached: wait ${SECONDS}`));
  await expect(page.getByTestId('announcer')).toContainText('Rate limit reached');

  // The countdown runs out and submit works again.
  await expect(submit).toBeEnabled({ timeout: 20_000 });
  await expect(page.getByTestId('rate-limited')).toBeHidden();
  await submit.click();
  await expect(page.locator('.flash')).toContainText('Queued compute_sum task');
});
