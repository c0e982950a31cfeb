import { test as base, expect, type APIRequestContext, type Locator, type Page } from '@playwright/test';
import { startService, writeKeysFile, type ApiKey, type Service } from './server';

interface WorkerFixtures {
  /** Settings of the service this worker starts (TASKWIRE_* variables). */
  serviceEnv: Record<string, string>;
  /** API keys the service asks for (written to a keys file); none: keys off. */
  apiKeys: ApiKey[];
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
  apiKeys: [[], { option: true, scope: 'worker' }],
  service: [
    async ({ serviceEnv, apiKeys }, use) => {
      const keys = apiKeys.length > 0 ? writeKeysFile(apiKeys) : null;
      try {
        const service = await startService(keys ? { ...serviceEnv, TASKWIRE_API_KEYS_FILE: keys.file } : serviceEnv);
        await use(service);
        await service.stop();
      } finally {
        keys?.remove();
      }
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

/** The count of tasks in `status` the overview shows. */
export function statusCount(page: Page, status: string): Locator {
  return page.getByTestId(`count-${status}`);
}

/** A number a locator's attribute holds (for `expect.poll`). */
export async function numberIn(locator: Locator, attribute: string): Promise<number> {
  return Number(await locator.getAttribute(attribute));
}

/** Submits a task through the API (for tests whose subject is not the form); answers its id. */
export async function postTask(
  request: APIRequestContext,
  task_type: string,
  parameters: object,
  options: { priority?: string; key?: string } = {},
): Promise<string> {
  const headers: Record<string, string> = options.key ? { Authorization: `Bearer ${options.key}` } : {};
  const response = await request.post('/tasks', {
    data: { task_type, parameters, priority: options.priority ?? 'normal' },
    headers,
  });
  expect(response.status()).toBe(202);
  return ((await response.json()) as { task_id: string }).task_id;
}

/** Waits, through the API, until a task has ended (for figures read at page load). */
export async function waitForEnd(request: APIRequestContext, taskId: string, key?: string): Promise<void> {
  const headers: Record<string, string> = key ? { Authorization: `Bearer ${key}` } : {};
  await expect
    .poll(async () => {
      const response = await request.get(`/tasks/${taskId}`, { headers });
      return ((await response.json()) as { status: string }).status;
    })
    .toMatch(/completed|failed|cancelled/);
}
