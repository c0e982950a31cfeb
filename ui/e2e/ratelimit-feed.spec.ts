import { expect, postTask, row, test } from './fixtures';

// A service of its own: 3 counted requests per 20 s, instant work. The window is long enough
// that a loaded machine still sees the refused feed's countdown before it runs out (with 8 s,
// one did not).
test.use({
  serviceEnv: { TASKWIRE_WORK_SCALE: '0', TASKWIRE_RATE_LIMIT: '3', TASKWIRE_RATE_WINDOW: '20' },
});

test('a refused EventSource reconnects when the countdown ends, and the list loads', async ({ page, request }) => {
  test.setTimeout(60_000);
  // One task for the list to show, then the rest of the quota (bounded: at most 2 more pass).
  const id = await postTask(request, 'compute_sum', { numbers: [1, 2] });
  for (let i = 0; i < 4; i++) {
    if ((await request.get('/tasks?limit=1')).status() === 429) break;
  }
  await page.goto('/');
  // The EventSource is refused; the list load that follows tells why, and starts the countdown.
  await expect(page.getByTestId('rate-limited')).toBeVisible();
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'reconnecting');
  await expect(page.getByTestId('connection')).toContainText(/Reconnecting in \d+ s/);
  await expect(page.getByRole('button', { name: 'Submit task' })).toBeDisabled();

  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live', { timeout: 30_000 });
  await expect(row(page, id)).toBeVisible({ timeout: 15_000 });
  await expect(page.getByRole('button', { name: 'Submit task' })).toBeEnabled();
});
