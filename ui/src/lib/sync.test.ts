import { describe, expect, it } from 'vitest';
import { FakeClock, FakeEventSource, flush } from '../test/fakes';
import { TaskSync, type SyncOptions } from './sync';
import { selectTasks } from './tasks';
import type { Task } from './types';

function task(id: string, status: Task['status'] = 'queued', attempt = 1): Task {
  return {
    task_id: id,
    task_type: 'compute_sum',
    status,
    priority: 'normal',
    parameters: { numbers: [1] },
    progress: status === 'completed' ? 100 : 0,
    eta_s: null,
    result: null,
    error: null,
    attempt,
    created_at: `2026-11-22T08:00:0${id.length % 10}Z`,
    started_at: null,
    finished_at: null,
  };
}

type Reply = { status: number; body: unknown; headers?: Record<string, string> };

function setup(extra: SyncOptions = {}) {
  const clock = new FakeClock();
  const sources: FakeEventSource[] = [];
  const requests: string[] = [];
  const headers: Array<Record<string, string>> = [];
  const replies: Reply[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    requests.push(`${init?.method ?? 'GET'} ${String(input)}`);
    headers.push((init?.headers ?? {}) as Record<string, string>);
    const reply = replies.shift() ?? { status: 200, body: [] };
    return new Response(JSON.stringify(reply.body), { status: reply.status, headers: reply.headers ?? {} });
  };
  const sync = new TaskSync({
    fetch,
    createEventSource: (url) => {
      const source = new FakeEventSource(url);
      sources.push(source);
      return source;
    },
    now: () => clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    ...extra,
  });
  return { sync, clock, sources, requests, headers, replies, last: () => sources[sources.length - 1]! };
}

const LIMITED = (seconds: number): Reply => ({
  status: 429,
  body: { type: 'about:blank', title: 'Too Many Requests', status: 429 },
  headers: { 'Retry-After': String(seconds), RateLimit: `"per-ip";r=0;t=${seconds}` },
});

describe('TaskSync', () => {
  it('opens the feed first, then loads the list once, and merges both', async () => {
    const { sync, requests, replies, last } = setup();
    replies.push({ status: 200, body: [task('a', 'processing')], headers: { RateLimit: '"per-ip";r=8;t=60' } });
    sync.start();
    expect(requests).toEqual([]); // no list before the subscription exists
    last().open();
    last().emit('task.completed', 5, task('a', 'completed'));
    await flush();
    expect(requests).toEqual(['GET /tasks?limit=200']);
    const snap = sync.getSnapshot();
    expect(snap.list).toEqual({ state: 'loaded' });
    expect(snap.feed).toEqual({ state: 'live', resumed: false });
    expect(snap.rate?.remaining).toBe(8);
    expect(selectTasks(snap.tasks).map((t) => t.status)).toEqual(['completed']);
  });

  it('reloads the list on resync, and only then', async () => {
    const { sync, requests, last } = setup();
    sync.start();
    last().open();
    last().emit('task.queued', 1, task('a'));
    await flush();
    last().drop();
    last().open(); // resumed by the browser: no reload
    await flush();
    expect(requests).toHaveLength(1);
    last().emit('resync', null, {});
    await flush();
    expect(requests).toEqual(['GET /tasks?limit=200', 'GET /tasks?limit=200']);
    expect(sync.getSnapshot().tasks.byId.a).toBeUndefined(); // not in the new list
  });

  it('on a 429 starts the countdown; a refused feed waits for it, then loads the list', async () => {
    const { sync, clock, requests, replies, sources, last } = setup();
    sync.start();
    // The feed is refused before it ever opened: the list load finds out why.
    replies.push(LIMITED(30));
    last().refuse();
    await flush();
    expect(requests).toEqual(['GET /tasks?limit=200']);
    expect(sync.getSnapshot().limitedUntil).toBe(clock.now + 30_000);
    expect(sync.getSnapshot().list).toEqual({ state: 'waiting' });
    expect(sync.getSnapshot().feed).toEqual({ state: 'reconnecting', at: clock.now + 30_000 });
    clock.advance(29_999);
    expect(sources).toHaveLength(1);
    clock.advance(1);
    expect(sources).toHaveLength(2);
    replies.push({ status: 200, body: [task('b')] });
    last().open();
    await flush();
    expect(requests).toHaveLength(2);
    expect(Object.keys(sync.getSnapshot().tasks.byId)).toEqual(['b']);
  });

  it('knows from RateLimit r=0 that a refused feed must wait for the reset', async () => {
    const { sync, clock, replies, last } = setup();
    replies.push({ status: 200, body: [], headers: { RateLimit: '"per-ip";r=0;t=12' } });
    sync.start();
    last().open();
    await flush();
    last().refuse();
    await flush();
    expect(clock.pending()).toEqual([12_000]);
  });

  it('with the feed live, retries a refused list load when the countdown ends', async () => {
    const { sync, clock, requests, replies, last } = setup();
    replies.push(LIMITED(5));
    sync.start();
    last().open();
    await flush();
    expect(sync.getSnapshot().list).toEqual({ state: 'waiting' });
    clock.advance(5000);
    await flush();
    expect(requests).toEqual(['GET /tasks?limit=200', 'GET /tasks?limit=200']);
    expect(sync.getSnapshot().list).toEqual({ state: 'loaded' });
  });

  it('shows other list failures for a manual retry', async () => {
    const { sync, requests, replies, last } = setup();
    replies.push({ status: 500, body: { type: 'about:blank', title: 'Internal Server Error', status: 500 } });
    sync.start();
    last().open();
    await flush();
    expect(sync.getSnapshot().list).toMatchObject({ state: 'error', problem: { status: 500 } });
    sync.retryList();
    await flush();
    expect(requests).toHaveLength(2);
    expect(sync.getSnapshot().list).toEqual({ state: 'loaded' });
  });

  it('applies the answers of submit, cancel and retry at once', async () => {
    const { sync, replies, last } = setup();
    sync.start();
    last().open();
    await flush();
    replies.push({ status: 202, body: task('n') });
    await sync.submit({ task_type: 'compute_sum', parameters: { numbers: [1] }, priority: 'normal' });
    expect(sync.getSnapshot().tasks.byId.n?.task.status).toBe('queued');
    replies.push({ status: 200, body: task('n', 'cancelled') });
    await sync.cancel('n');
    expect(sync.getSnapshot().tasks.byId.n?.task.status).toBe('cancelled');
    replies.push({ status: 202, body: task('n', 'queued', 2) });
    await sync.retry('n');
    expect(sync.getSnapshot().tasks.byId.n?.task.attempt).toBe(2);
    replies.push({ status: 409, body: { type: 'about:blank', title: 'Conflict', status: 409 } });
    const refused = await sync.cancel('n');
    expect(refused.ok).toBe(false);
  });

  it('with an API key: the feed carries it as access_token (on resumes too), fetches as Bearer', async () => {
    const { sync, clock, headers, last } = setup({ apiKey: 'k/1' });
    sync.start();
    expect(last().url).toBe('/events?access_token=k%2F1');
    last().open();
    last().emit('task.queued', 3, task('a'));
    await flush();
    expect(headers[0]).toMatchObject({ Authorization: 'Bearer k/1' });
    last().refuse();
    await flush();
    clock.advance(1000); // the backoff
    expect(last().url).toBe('/events?access_token=k%2F1&last_event_id=3');
  });

  it('reports a 401 to onUnauthorized', async () => {
    const problems: string[] = [];
    const { sync, replies, last } = setup({ apiKey: 'old', onUnauthorized: (p) => problems.push(p.title) });
    replies.push({ status: 401, body: { type: 'about:blank', title: 'Unauthorized', status: 401 } });
    sync.start();
    last().open();
    await flush();
    expect(problems).toEqual(['Unauthorized']);
  });

  it('tells onApplied of each event that changed a task, with the task before it; subscribers get every event', async () => {
    const applied: Array<[string, string | undefined]> = [];
    const seen: string[] = [];
    const { sync, replies, last } = setup({
      onApplied: (event, previous) => applied.push([`${event.name}#${event.id}`, previous?.status]),
    });
    const unsubscribe = sync.subscribeEvents((event) => seen.push(`${event.name}#${event.id ?? ''}`));
    replies.push({ status: 200, body: [] });
    sync.start();
    last().open();
    await flush();
    last().emit('task.queued', 1, task('a'));
    last().emit('task.processing', 2, task('a', 'processing'));
    last().emit('task.processing', 2, task('a', 'processing')); // a duplicate
    last().emit('task.completed', 3, task('a', 'completed'));
    last().emit('task.expired', 4, task('a', 'completed'));
    last().emit('task.expired', 5, task('a', 'completed')); // already gone
    unsubscribe();
    last().emit('task.queued', 6, task('b'));
    expect(applied).toEqual([
      ['task.queued#1', undefined],
      ['task.processing#2', 'queued'],
      ['task.completed#3', 'processing'],
      ['task.expired#4', 'completed'],
      ['task.queued#6', undefined],
    ]);
    expect(seen).toHaveLength(6);
  });
});
