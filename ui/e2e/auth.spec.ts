import type { Page } from '@playwright/test';
import { FAST, badge, expect, postTask, row, test, waitForEnd } from './fixtures';

// A service that asks for API keys: two clients and an admin.
const ALICE = { name: 'alice', key: 'alice-key-3c1f0e9a7b' };
const BOB = { name: 'bob', key: 'bob-key-5d2e8f1c4a' };
const OPS = { name: 'ops', key: 'ops-key-9a7b3c1f0e', admin: true };
// (an array option goes in a [value, options] pair)
test.use({ serviceEnv: FAST, apiKeys: [[ALICE, BOB, OPS], { scope: 'worker' }] });

async function signIn(page: Page, key: string) {
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('asks for a key, refuses a wrong one, shows the key’s own tasks live, and signs out', async ({
  page,
  request,
}) => {
  const bobs = await postTask(request, 'compute_sum', { numbers: [7] }, { key: BOB.key });
  const alices = await postTask(request, 'compute_sum', { numbers: [1] }, { key: ALICE.key });
  await waitForEnd(request, alices, ALICE.key);

  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  const input = page.getByLabel('API key');
  await expect(input).toBeFocused();

  await signIn(page, 'not-a-key');
  await expect(page.getByTestId('signin-error')).toHaveText('That API key was not accepted. Check it and try again.');
  await expect(input).toHaveAttribute('aria-invalid', 'true');
  await expect(input).toHaveAccessibleDescription(/not accepted/);

  // The right key: the fetches carry it as a Bearer header, the EventSource as access_token.
  let listReads = 0;
  page.on('request', (r) => {
    if (r.url().includes('/tasks?limit=')) listReads += 1;
  });
  const listed = page.waitForRequest((r) => r.url().includes('/tasks?limit='));
  const streamed = page.waitForRequest((r) => new URL(r.url()).pathname === '/events');
  await signIn(page, ALICE.key);
  expect((await listed).headers().authorization).toBe(`Bearer ${ALICE.key}`);
  expect(new URL((await streamed).url()).searchParams.get('access_token')).toBe(ALICE.key);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(page.getByTestId('scope')).toHaveText("alice's tasks");
  await expect(page.getByTestId('session')).toContainText('alice');
  await expect(badge(page, alices)).toHaveText(/completed/);
  await expect(row(page, bobs)).toHaveCount(0);
  await expect(page.getByRole('columnheader', { name: 'Owner' })).toHaveCount(0);

  // A task of alice's submitted elsewhere arrives through the stream (the list was read
  // before it existed, and is not read again), and runs to its end.
  const later = await postTask(request, 'generate_report', { title: 'Live', sections: 4 }, { key: ALICE.key });
  await expect(row(page, later)).toBeVisible();
  await expect(badge(page, later)).toHaveText(/completed/);
  expect(listReads).toBe(1);
  const bobsLater = await postTask(request, 'compute_sum', { numbers: [8] }, { key: BOB.key });
  await waitForEnd(request, bobsLater, BOB.key);
  await expect(row(page, bobsLater)).toHaveCount(0);

  // The key is kept for the tab: a reload needs no sign-in.
  await page.reload();
  await expect(page.getByTestId('scope')).toHaveText("alice's tasks");
  await expect(badge(page, later)).toHaveText(/completed/);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByTestId('signin-error')).toHaveCount(0);
  await page.reload();
  await expect(page.getByLabel('API key')).toBeVisible();
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
});

test('an admin sees every key’s tasks, with an owner column', async ({ page, request }) => {
  const alices = await postTask(request, 'compute_sum', { numbers: [2] }, { key: ALICE.key });
  const bobs = await postTask(request, 'compute_sum', { numbers: [3] }, { key: BOB.key });
  await page.goto('/');
  await signIn(page, OPS.key);
  await expect(page.getByTestId('scope')).toHaveText('all tasks (admin: ops)');
  await expect(page.getByTestId('session')).toContainText('ops (admin)');
  await expect(page.getByRole('columnheader', { name: 'Owner' })).toBeVisible();
  await expect(row(page, alices).locator('td.owner')).toHaveText('alice');
  await expect(row(page, bobs).locator('td.owner')).toHaveText('bob');
  await row(page, bobs).getByRole('button', { name: /^Details of compute_sum/ }).click();
  await expect(page.getByRole('dialog').getByTestId('detail-owner')).toHaveText('bob');
});
