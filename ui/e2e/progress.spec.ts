import { badge, expect, FAST, row, submitTask, test } from './fixtures';

// A service of its own, with 7 s of work for this task (FAST's scale would give 3.6 s): a
// browser on a loaded machine still sees the bar well before the end, which FAST left to chance.
test.use({ serviceEnv: { ...FAST, TASKWIRE_WORK_SCALE: '0.3' } });

test('a progress bar moves while a longer task runs', async ({ dashboard: page }) => {
  const id = await submitTask(page, 'generate_report', async () => {
    await page.getByLabel('Title').fill('Quarterly report');
    // the default is shown, and prefilled
    await expect(page.getByLabel('Sections')).toHaveValue('3');
    await expect(page.getByLabel('Sections')).toHaveAccessibleDescription(/Default: 3/);
    await page.getByLabel('Sections').fill('20');
  });
  const bar = row(page, id).getByRole('progressbar');
  await expect(badge(page, id)).toHaveText(/processing/);
  await expect(bar).toHaveAttribute('aria-valuenow', /^[1-7]?[0-9]$/); // 0-79: well before the end
  const seen = Number(await bar.getAttribute('aria-valuenow'));
  await expect
    .poll(async () => Number(await bar.getAttribute('aria-valuenow')))
    .toBeGreaterThan(Math.max(seen, 5));
  await expect(row(page, id).locator('.progress-text')).toContainText(/\d+%/);
  await expect(badge(page, id)).toHaveText(/completed/, { timeout: 15_000 });
  await expect(bar).toHaveAttribute('aria-valuenow', '100');
});
