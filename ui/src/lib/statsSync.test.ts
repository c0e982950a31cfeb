import { describe, expect, it } from 'vitest';
import { FakeClock, flush } from '../test/fakes';
import type { Dated, Result } from './api';
import { StatsSync } from './statsSync';
import type { Stats, Task } from './types';

const T0 = Date.parse('2026-11-22T08:00:00Z');

function stats(newestStart: number, completed = 0): Stats {
  const intervals = [newestStart - 15_000, newestStart].map((start) => ({
    start: new Date(start).toISOString(),
    finished: { completed: start === newestStart ? completed : 0, failed: 0, cancelled: 0 },
    queued: 0,
    processing: 0,
    run_time_s: {},
  }));
  return { interval_s: 15, counts: { queued: 0, processing: 1, completed, failed: 0, cancelled: 0 }, intervals };
}

function setup() {
  const clock = new FakeClock();
  clock.now = T0 + 3000; // the client's clock, 1 s behind the server's
  const answers: Array<Result<Dated<Stats>>> = [];
  let reads = 0;
  const api = {
    stats: async (): Promise<Result<Dated<Stats>>> => {
      reads += 1;
      return (
        answers.shift() ?? {
          ok: false,
          status: 503,
          retryAfterS: null,
          problem: { type: 'about:blank', title: 'Service Unavailable', status: 503 },
        }
      );
    },
  };
  const ok = (body: Stats, serverDate: number): Result<Dated<Stats>> => ({
    ok: true,
    status: 200,
    data: { body, serverDate, receivedAt: clock.now },
  });
  const sync = new StatsSync({ api, now: () => clock.now, setTimer: clock.setTimer, clearTimer: clock.clearTimer });
  return { clock, answers, ok, sync, reads: () => reads };
}

const completed: Task = {
  task_id: 'a',
  task_type: 'compute_sum',
  status: 'completed',
  priority: 'normal',
  parameters: {},
  progress: 100,
  eta_s: null,
  result: null,
  error: null,
  attempt: 1,
  created_at: new Date(T0 + 3000).toISOString(),
  started_at: new Date(T0 + 3500).toISOString(),
  finished_at: new Date(T0 + 4000).toISOString(),
};

describe('StatsSync', () => {
  it('reads once at start, then once as each interval begins on the server clock', async () => {
    const { clock, answers, ok, sync, reads } = setup();
    answers.push(ok(stats(T0), T0 + 4000));
    sync.start();
    await flush();
    expect(reads()).toBe(1);
    expect(sync.getSnapshot().overview?.counts.processing).toBe(1);
    // server ≈ client + 1.5 s: the interval ends at T0 + 15 s server time, T0 + 13.5 s here,
    // and the read follows 0.75 s later.
    expect(sync.boundaryAt()).toBe(T0 + 13_500);
    expect(clock.pending()).toEqual([11_250]);

    answers.push(ok(stats(T0 + 15_000, 4), T0 + 15_000));
    clock.advance(11_249);
    expect(reads()).toBe(1);
    clock.advance(1);
    // the window moved on at once, before the answer
    expect(sync.getSnapshot().overview?.intervals.at(-1)?.start).toBe(T0 + 15_000);
    await flush();
    expect(reads()).toBe(2);
    expect(sync.getSnapshot().overview?.counts.completed).toBe(4);
    expect(clock.pending()).toHaveLength(1);
  });

  it('applies events between reads, and none before the first', async () => {
    const { answers, ok, sync } = setup();
    sync.applyEvent({ name: 'task.completed', task: completed }, undefined); // nothing to apply to yet
    answers.push(ok(stats(T0), T0 + 4000));
    sync.start();
    await flush();
    let changes = 0;
    sync.subscribe(() => changes++);
    sync.applyEvent({ name: 'task.completed', task: completed }, { ...completed, status: 'processing' });
    const overview = sync.getSnapshot().overview!;
    expect(changes).toBe(1);
    expect(overview.counts).toMatchObject({ processing: 0, completed: 1 });
    expect(overview.intervals.at(-1)?.finished.completed).toBe(1);
  });

  it('keeps the figures it has when a read fails, and tries again at the next boundary', async () => {
    const { clock, answers, ok, sync, reads } = setup();
    answers.push(ok(stats(T0), T0 + 4000));
    sync.start();
    await flush();
    clock.advance(11_250); // the read at the boundary fails (503)
    await flush();
    expect(sync.getSnapshot().problem?.status).toBe(503);
    expect(sync.getSnapshot().overview?.intervals.at(-1)?.start).toBe(T0 + 15_000);
    expect(clock.pending()).toEqual([15_000]);
    answers.push(ok(stats(T0 + 30_000), T0 + 30_000));
    clock.advance(15_000);
    await flush();
    expect(reads()).toBe(3);
    expect(sync.getSnapshot().problem).toBeNull();
  });

  it('without any figures, tries again after 15 s; stop drops an answer on its way', async () => {
    const { clock, answers, ok, sync, reads } = setup();
    sync.start();
    await flush();
    expect(sync.getSnapshot()).toMatchObject({ overview: null, problem: { status: 503 } });
    expect(clock.pending()).toEqual([15_000]);
    answers.push(ok(stats(T0), T0 + 4000));
    clock.advance(15_000);
    sync.stop();
    await flush();
    expect(reads()).toBe(2);
    expect(sync.getSnapshot().overview).toBeNull();
    expect(clock.pending()).toEqual([]);
  });
});
