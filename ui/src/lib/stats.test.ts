import { describe, expect, it } from 'vitest';
import {
  RUN_TIME_BOUNDS_S,
  advanceTo,
  applyTaskEvent,
  currentEnd,
  histogramOf,
  impliedPrevious,
  overviewFromStats,
  percentile,
  runTimeBucket,
  runTimesOf,
  serverOffsetMs,
  type Overview,
} from './stats';
import type { Stats, StatsInterval, Task, TaskStatus } from './types';

const T0 = Date.parse('2026-11-22T08:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function interval(start: number, patch: Partial<StatsInterval> = {}): StatsInterval {
  return {
    start: iso(start).replace('.000', ''),
    finished: { completed: 0, failed: 0, cancelled: 0 },
    queued: null,
    processing: null,
    run_time_s: {},
    ...patch,
  };
}

/** Four intervals of 15 s, the newest starting at T0. */
function stats(patch: Partial<Stats> = {}, newest: Partial<StatsInterval> = {}): Stats {
  return {
    interval_s: 15,
    counts: { queued: 2, processing: 1, completed: 5, failed: 1, cancelled: 0 },
    intervals: [
      interval(T0 - 45_000),
      interval(T0 - 30_000, { finished: { completed: 3, failed: 1, cancelled: 0 }, queued: 4, processing: 3 }),
      interval(T0 - 15_000, {
        finished: { completed: 2, failed: 0, cancelled: 0 },
        queued: 1,
        processing: 2,
        run_time_s: { compute_sum: { count: 2, p50: 0.9051, p95: 1.28 } },
      }),
      interval(T0, { queued: 3, processing: 0, ...newest }),
    ],
    ...patch,
  };
}

function task(status: TaskStatus, patch: Partial<Task> = {}): Task {
  return {
    task_id: 't1',
    task_type: 'compute_sum',
    status,
    priority: 'normal',
    parameters: {},
    progress: 0,
    eta_s: null,
    result: null,
    error: null,
    attempt: 1,
    created_at: iso(T0 + 1000),
    started_at: status === 'queued' ? null : iso(T0 + 2000),
    finished_at: ['completed', 'failed', 'cancelled'].includes(status) ? iso(T0 + 3500) : null,
    ...patch,
  };
}

const newest = (o: Overview) => o.intervals[o.intervals.length - 1]!;

describe('run-time histograms', () => {
  it('has the service bounds: 10 ms, each √2 times the last, 36 of them', () => {
    expect(RUN_TIME_BOUNDS_S).toHaveLength(36);
    expect(RUN_TIME_BOUNDS_S.slice(0, 4)).toEqual([0.01, 0.0141, 0.02, 0.0283]);
    expect(RUN_TIME_BOUNDS_S[35]).toBeCloseTo(1853.6, 0);
    expect(runTimeBucket(0)).toBe(0);
    expect(runTimeBucket(0.01)).toBe(0);
    expect(runTimeBucket(0.011)).toBe(1);
    expect(runTimeBucket(99_999)).toBe(36);
  });

  it('reads percentiles as the service does', () => {
    const counts = new Array<number>(37).fill(0);
    expect(percentile(counts, 0.5)).toBeNull();
    counts[runTimeBucket(1)] = 9;
    counts[runTimeBucket(3)] = 1;
    expect(percentile(counts, 0.5)).toBe(1.28);
    expect(percentile(counts, 0.95)).toBe(3.6204);
    counts[36] = 100;
    expect(percentile(counts, 0.95)).toBe(RUN_TIME_BOUNDS_S[35]);
  });

  it('rebuilds a histogram that gives back the count, p50 and p95 sent', () => {
    for (const sent of [
      { count: 1, p50: 0.9051, p95: 0.9051 },
      { count: 2, p50: 0.9051, p95: 1.28 },
      { count: 7, p50: 0.02, p95: 40.96 },
      { count: 100, p50: 2.56, p95: 2.56 },
    ]) {
      expect(runTimesOf(histogramOf(sent))).toEqual(sent);
    }
    expect(runTimesOf(histogramOf({ count: 0, p50: null, p95: null }))).toEqual({ count: 0, p50: null, p95: null });
  });
});

describe('overviewFromStats', () => {
  it('keeps counts and intervals, times in ms, and the counts now as the newest interval', () => {
    const o = overviewFromStats(stats());
    expect(o.intervalMs).toBe(15_000);
    expect(o.counts).toEqual({ queued: 2, processing: 1, completed: 5, failed: 1, cancelled: 0 });
    expect(o.intervals.map((i) => i.start)).toEqual([T0 - 45_000, T0 - 30_000, T0 - 15_000, T0]);
    expect(o.intervals[1]).toMatchObject({ finished: { completed: 3, failed: 1 }, queued: 4, processing: 3 });
    expect(runTimesOf(o.intervals[2]!.runTimes.compute_sum)).toEqual({ count: 2, p50: 0.9051, p95: 1.28 });
    expect(newest(o)).toMatchObject({ queued: 2, processing: 1 });
    expect(currentEnd(o)).toBe(T0 + 15_000);
  });
});

describe('applyTaskEvent', () => {
  const base = () => overviewFromStats(stats());

  it('a completed task moves the counts and lands in its interval with its run time', () => {
    const o = applyTaskEvent(base(), { name: 'task.completed', task: task('completed') }, task('processing'));
    expect(o.counts).toMatchObject({ processing: 0, completed: 6 });
    expect(newest(o).finished).toEqual({ completed: 1, failed: 0, cancelled: 0 });
    expect(runTimesOf(newest(o).runTimes.compute_sum)).toEqual({ count: 1, p50: 1.8102, p95: 1.8102 });
    expect(newest(o).processing).toBe(0);
  });

  it('adds a run time to the histogram rebuilt from the service', () => {
    const earlier = { finished_at: iso(T0 - 5000), started_at: iso(T0 - 9000) };
    const o = applyTaskEvent(base(), { name: 'task.failed', task: task('failed', earlier) }, task('processing'));
    const previous = o.intervals[2]!;
    expect(previous.finished).toEqual({ completed: 2, failed: 1, cancelled: 0 });
    expect(runTimesOf(previous.runTimes.compute_sum)).toEqual({ count: 3, p50: 1.28, p95: 5.12 });
  });

  it('a cancelled one counts no run time', () => {
    const o = applyTaskEvent(base(), { name: 'task.cancelled', task: task('cancelled') }, task('processing'));
    expect(newest(o).finished.cancelled).toBe(1);
    expect(newest(o).runTimes).toEqual({});
    expect(o.counts).toMatchObject({ processing: 0, cancelled: 1 });
  });

  it('a new task is queued; a start and progress move only what they change', () => {
    let o = applyTaskEvent(base(), { name: 'task.queued', task: task('queued') }, undefined);
    expect(o.counts.queued).toBe(3);
    expect(newest(o).queued).toBe(3);
    o = applyTaskEvent(o, { name: 'task.processing', task: task('processing') }, task('queued'));
    expect(o.counts).toMatchObject({ queued: 2, processing: 2 });
    const same = applyTaskEvent(o, { name: 'task.progress', task: task('processing', { progress: 50 }) }, task('processing'));
    expect(same).toBe(o);
  });

  it('infers where an unknown task came from, when its event tells', () => {
    expect(impliedPrevious({ name: 'task.processing', task: task('processing') })).toBe('queued');
    expect(impliedPrevious({ name: 'task.completed', task: task('completed') })).toBe('processing');
    expect(impliedPrevious({ name: 'task.cancelled', task: task('cancelled', { started_at: null }) })).toBe('queued');
    expect(impliedPrevious({ name: 'task.cancelled', task: task('cancelled') })).toBe('processing');
    expect(impliedPrevious({ name: 'task.queued', task: task('queued', { attempt: 2 }) })).toBeNull();
    const o = applyTaskEvent(base(), { name: 'task.completed', task: task('completed') }, undefined);
    expect(o.counts).toMatchObject({ processing: 0, completed: 6 });
  });

  it('a retry leaves its old outcome; an expiry takes the task away', () => {
    let o = applyTaskEvent(base(), { name: 'task.queued', task: task('queued', { attempt: 2 }) }, task('failed'));
    expect(o.counts).toMatchObject({ queued: 3, failed: 0 });
    o = applyTaskEvent(o, { name: 'task.expired', task: task('completed') }, undefined);
    expect(o.counts.completed).toBe(4);
  });

  it('does not count twice an end the list already showed', () => {
    const o = base();
    expect(applyTaskEvent(o, { name: 'task.completed', task: task('completed') }, task('completed'))).toBe(o);
    const again = applyTaskEvent(o, { name: 'task.failed', task: task('failed', { attempt: 2 }) }, task('failed'));
    expect(newest(again).finished.failed).toBe(1);
  });

  it('never counts below zero', () => {
    const o = overviewFromStats(stats({ counts: { queued: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 } }));
    const next = applyTaskEvent(o, { name: 'task.completed', task: task('completed') }, undefined);
    expect(next.counts).toMatchObject({ processing: 0, completed: 1 });
  });

  it('an end in a newer interval moves the window on; one older than the window changes only counts', () => {
    const later = { started_at: iso(T0 + 29_000), finished_at: iso(T0 + 31_000) };
    const o = applyTaskEvent(base(), { name: 'task.completed', task: task('completed', later) }, task('processing'));
    expect(o.intervals.map((i) => i.start)).toEqual([T0 - 15_000, T0, T0 + 15_000, T0 + 30_000]);
    expect(newest(o).finished.completed).toBe(1);
    expect(o.intervals[1]).toMatchObject({ queued: 2, processing: 1 }); // as it was when it ended
    expect(o.intervals[2]).toMatchObject({ queued: null, processing: null });
    expect(newest(o)).toMatchObject({ queued: 2, processing: 0 });

    const ancient = { started_at: iso(T0 - 120_000), finished_at: iso(T0 - 110_000) };
    const old = applyTaskEvent(base(), { name: 'task.completed', task: task('completed', ancient) }, task('processing'));
    expect(old.intervals).toEqual(base().intervals.map((i, n, all) => (n === all.length - 1 ? { ...i, processing: 0 } : i)));
  });
});

describe('advanceTo', () => {
  it('moves the window by whole intervals, keeping its length', () => {
    const o = overviewFromStats(stats());
    expect(advanceTo(o, T0)).toBe(o);
    const next = advanceTo(o, T0 + 15_000);
    expect(next.intervals.map((i) => i.start)).toEqual([T0 - 30_000, T0 - 15_000, T0, T0 + 15_000]);
    expect(newest(next)).toMatchObject({ finished: { completed: 0, failed: 0, cancelled: 0 }, queued: 2, processing: 1 });
    const far = advanceTo(o, T0 + 3_600_000);
    expect(far.intervals.map((i) => i.start)).toEqual([3, 2, 1, 0].map((n) => T0 + 3_600_000 - n * 15_000));
  });
});

describe('serverOffsetMs', () => {
  it('reads the Date field (+0.5 s), kept inside the newest interval', () => {
    expect(serverOffsetMs({ serverDate: T0 + 4000, receivedAt: T0 + 1000 }, T0, 15_000)).toBe(3500);
    // a server whose Date is behind its own interval: at least the interval's start
    expect(serverOffsetMs({ serverDate: T0 - 3000, receivedAt: T0 }, T0, 15_000)).toBe(0);
    expect(serverOffsetMs({ serverDate: null, receivedAt: T0 + 20_000 }, T0, 15_000)).toBe(-5001);
    expect(serverOffsetMs({ serverDate: null, receivedAt: T0 + 5000 }, null, 15_000)).toBe(0);
  });
});
