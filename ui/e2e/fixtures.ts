import { test as base, expect, type Locator, type Page } from '@playwright/test';
import { startService, type Service } from './server';

interface WorkerFixtures {
  /** Settings of the service this worker starts (TASKWIRE_* variables). */
  serviceEnv: Record<string, string>;
  service: Service;
}

/** Quick work (tasks take 0.75-4.5 s) and a rate limit that never gets in the way. */
export const FAST = {
  TASKWIRE_WORK_SCALE: '0.15',
  TASKWIRE_RATE_LIMIT: '10000',
  TASKWIRE_CONCURRENCY: '3',
};

export const test = base.extend<{ dashboard: Page }, WorkerFixtures>({
  serviceEnv: [FAST, { option: true, scope: 'worker' }],
  service: [
    async ({ serviceEnv }, use) => {
      const service = await startService(serviceEnv);
      await use(service);
      await service.stop();
    },
    { scope: 'worker' },
  ],
  baseURL: async ({ service }, use) => {
    await use(service.url);
  },
  /** The dashboard, loaded, with the live feed connected. */
  dashboard: async ({ page }, use) => {
    await page.goto('/');
    await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
    await expect(page.getByLabel('Task type')).toBeVisible();
    await use(page);
  },
});

export { expect };

/** Submits the form for `taskType` after `fill` has filled its fields; answers the new task's id. */
export async function submitTask(page: Page, taskType: string, fill: (page: Page) => Promise<void>) {
  await page.getByLabel('Task type').selectOption(taskType);
  await fill(page);
  await page.getByRole('button', { name: 'Submit task' }).click();
  const flash = page.locator('.flash[data-task-id]');
  await expect(flash).toContainText(`Queued ${taskType} task`);
  const id = await flash.getAttribute('data-task-id');
  expect(id).toBeTruthy();
  return id!;
}

export function row(page: Page, taskId: string): Locator {
  return page.locator(`tr[data-task-id="${taskId}"]`);
}

export function badge(page: Page, taskId: string): Locator {
  return row(page, taskId).locator('.badge');
}
