/**
 * The overview's figures: `GET /stats` (counts now, and the last 15 minutes in intervals),
 * moved on by the feed's events between reads.
 *
 * - Counts: an applied event moves its task from the status it had (the list's, or else the
 *   one its event implies) to its new one; `task.expired` takes it away.
 * - A task that ends counts in the interval its `finished_at` falls in, by outcome; a completed
 *   or failed one adds its run time to its type's histogram there. An end in an interval newer
 *   than the newest shown moves the window on.
 * - Run times are kept as the service keeps them: histograms over fixed bounds (10 ms, then
 *   each √2 times the last), percentiles read as a bucket's upper bound. `/stats` sends only
 *   count, p50 and p95 of each; they become a histogram with half the count at p50 and the
 *   rest at p95, which gives back the same two figures, and local run times add to it exactly.
 * - The newest interval's queue depth and tasks processing are the counts now.
 *
 * Events show only what this page may see (its key's tasks), and a list or an answer is not
 * an event: whatever the events miss, the next read of `/stats` puts right.
 */
import { timeKey } from './tasks';
import { STATUSES, type Outcome, type RunTimes, type Stats, type Task, type TaskEventName, type TaskStatus } from './types';

/** Upper bounds (s) of the run-time histogram's buckets, as the service's `RUN_TIME_BOUNDS_S`. */
export const RUN_TIME_BOUNDS_S: readonly number[] = Array.from(
  { length: 36 },
  (_, n) => Math.round(0.01 * 2 ** (n / 2) * 1e4) / 1e4,
);
/** Buckets: one per bound, and a last one for anything longer. */
export const BUCKETS = RUN_TIME_BOUNDS_S.length + 1;

export interface OverviewInterval {
  /** Start, ms since the epoch (the server's clock). */
  start: number;
  finished: Record<Outcome, number>;
  queued: number | null;
  processing: number | null;
  /** By task type: run-time counts per bucket. */
  runTimes: Readonly<Record<string, readonly number[]>>;
}

export interface Overview {
  intervalMs: number;
  counts: Record<TaskStatus, number>;
  /** Oldest first; the last is the current one. */
  intervals: readonly OverviewInterval[];
}

/** A task event as the overview needs it. */
export interface OverviewEvent {
  name: TaskEventName;
  task: Task;
}

/** The bucket a run time falls in. */
export function runTimeBucket(seconds: number): number {
  const index = RUN_TIME_BOUNDS_S.findIndex((bound) => seconds <= bound);
  return index < 0 ? RUN_TIME_BOUNDS_S.length : index;
}

/** The bucket whose bound is nearest to `bound` (a percentile the service sent). */
function bucketOfBound(bound: number): number {
  let best = 0;
  for (let i = 1; i < RUN_TIME_BOUNDS_S.length; i++) {
    if (Math.abs(RUN_TIME_BOUNDS_S[i]! - bound) < Math.abs(RUN_TIME_BOUNDS_S[best]! - bound)) best = i;
  }
  return best;
}

/** The run time below which `fraction` of a histogram's fall (a bucket's bound); null if empty. */
export function percentile(counts: readonly number[], fraction: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(fraction * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= rank) return RUN_TIME_BOUNDS_S[Math.min(i, RUN_TIME_BOUNDS_S.length - 1)]!;
  }
  return RUN_TIME_BOUNDS_S[RUN_TIME_BOUNDS_S.length - 1]!;
}

/** A histogram giving back the count, p50 and p95 the service sent. */
export function histogramOf(runTimes: RunTimes): number[] {
  const counts = new Array<number>(BUCKETS).fill(0);
  const { count, p50, p95 } = runTimes;
  if (count <= 0 || p50 === null) return counts;
  const half = Math.ceil(count / 2);
  counts[bucketOfBound(p50)]! += half;
  counts[bucketOfBound(p95 ?? p50)]! += count - half;
  return counts;
}

/** Adds histograms (of one type over several intervals, say). */
export function addHistograms(histograms: Iterable<readonly number[]>): number[] {
  const sum = new Array<number>(BUCKETS).fill(0);
  for (const counts of histograms) counts.forEach((n, i) => (sum[i]! += n));
  return sum;
}

export function runTimesOf(counts: readonly number[] | undefined): RunTimes {
  const histogram = counts ?? [];
  return {
    count: histogram.reduce((a, b) => a + b, 0),
    p50: percentile(histogram, 0.5),
    p95: percentile(histogram, 0.95),
  };
}

const noneFinished = (): Record<Outcome, number> => ({ completed: 0, failed: 0, cancelled: 0 });

function emptyInterval(start: number): OverviewInterval {
  return { start, finished: noneFinished(), queued: null, processing: null, runTimes: {} };
}

/** The start (ms) of the interval `ms` falls in. */
export const intervalStart = (ms: number, intervalMs: number): number => Math.floor(ms / intervalMs) * intervalMs;

const msOf = (iso: string): number => timeKey(iso) / 1000;

function withNow(overview: Overview): Overview {
  const intervals = overview.intervals.slice();
  const last = intervals[intervals.length - 1];
  if (last) {
    intervals[intervals.length - 1] = { ...last, queued: overview.counts.queued, processing: overview.counts.processing };
  }
  return { ...overview, intervals };
}

/** The overview of a `GET /stats` answer. */
export function overviewFromStats(stats: Stats): Overview {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, Math.max(0, stats.counts[s] ?? 0)])) as Record<
    TaskStatus,
    number
  >;
  const intervals = stats.intervals.map(
    (interval): OverviewInterval => ({
      start: msOf(interval.start),
      finished: { ...noneFinished(), ...interval.finished },
      queued: interval.queued,
      processing: interval.processing,
      runTimes: Object.fromEntries(
        Object.entries(interval.run_time_s).map(([type, runTimes]) => [type, histogramOf(runTimes)]),
      ),
    }),
  );
  return withNow({ intervalMs: stats.interval_s * 1000, counts, intervals });
}

/** Moves the window on so that its newest interval starts at `start` (no-op if it already does, or later). */
export function advanceTo(overview: Overview, start: number): Overview {
  const { intervals, intervalMs } = overview;
  const newest = intervals[intervals.length - 1];
  if (!newest || start <= newest.start) return overview;
  const added: OverviewInterval[] = [];
  for (let s = Math.max(newest.start + intervalMs, start - (intervals.length - 1) * intervalMs); s <= start; s += intervalMs) {
    added.push(emptyInterval(s));
  }
  const kept = [...intervals, ...added].slice(-intervals.length);
  return withNow({ ...overview, intervals: kept });
}

/** The status a task had before `event`, when it is not known from the list; null if unsure. */
export function impliedPrevious(event: OverviewEvent): TaskStatus | null {
  const { task } = event;
  switch (event.name) {
    case 'task.processing':
      return 'queued';
    case 'task.progress':
    case 'task.completed':
    case 'task.failed':
      return 'processing';
    case 'task.cancelled':
      return task.started_at ? 'processing' : 'queued';
    case 'task.expired':
      return task.status;
    case 'task.queued':
      return null; // new (attempt 1), or a retry of a failed or cancelled one
  }
}

function moveCounts(
  counts: Record<TaskStatus, number>,
  from: TaskStatus | null,
  to: TaskStatus | null,
): Record<TaskStatus, number> {
  if (from === to) return counts;
  const next = { ...counts };
  if (from) next[from] = Math.max(0, next[from] - 1);
  if (to) next[to] += 1;
  return next;
}

function recordFinish(overview: Overview, task: Task, outcome: Outcome): Overview {
  if (!task.finished_at) return overview;
  const finishedMs = msOf(task.finished_at);
  if (Number.isNaN(finishedMs)) return overview;
  const moved = advanceTo(overview, intervalStart(finishedMs, overview.intervalMs));
  const index = moved.intervals.findIndex((i) => finishedMs >= i.start && finishedMs < i.start + moved.intervalMs);
  if (index < 0) return moved; // older than the window
  const interval = moved.intervals[index]!;
  let runTimes = interval.runTimes;
  if (outcome !== 'cancelled' && task.started_at) {
    const seconds = (finishedMs - msOf(task.started_at)) / 1000;
    if (Number.isFinite(seconds) && seconds >= 0) {
      const counts = (runTimes[task.task_type] ?? new Array<number>(BUCKETS).fill(0)).slice();
      counts[runTimeBucket(seconds)]! += 1;
      runTimes = { ...runTimes, [task.task_type]: counts };
    }
  }
  const intervals = moved.intervals.slice();
  intervals[index] = { ...interval, finished: { ...interval.finished, [outcome]: interval.finished[outcome] + 1 }, runTimes };
  return { ...moved, intervals };
}

const OUTCOME_OF: Partial<Record<TaskEventName, Outcome>> = {
  'task.completed': 'completed',
  'task.failed': 'failed',
  'task.cancelled': 'cancelled',
};

/**
 * Applies an event the task list applied (not a duplicate), given the task as it was known
 * before it (undefined if it was not).
 */
export function applyTaskEvent(overview: Overview, event: OverviewEvent, previous: Task | undefined): Overview {
  const from = previous ? previous.status : impliedPrevious(event);
  const to = event.name === 'task.expired' ? null : event.task.status;
  let next: Overview = { ...overview, counts: moveCounts(overview.counts, from, to) };
  const outcome = OUTCOME_OF[event.name];
  if (outcome && (previous === undefined || previous.status !== outcome || previous.attempt !== event.task.attempt)) {
    next = recordFinish(next, event.task, outcome);
  }
  if (next.counts === overview.counts && next.intervals === overview.intervals) return overview;
  return withNow(next);
}

/** When the current interval ends, by the server's clock (ms). */
export const currentEnd = (overview: Overview): number | null => {
  const newest = overview.intervals[overview.intervals.length - 1];
  return newest ? newest.start + overview.intervalMs : null;
};

/**
 * The server's clock minus the client's (ms), from an answer's `Date` field (whole seconds,
 * so +0.5 s) kept within the newest interval the answer describes (the server was in it).
 */
export function serverOffsetMs(
  answer: { serverDate: number | null; receivedAt: number },
  newestStart: number | null,
  intervalMs: number,
): number {
  let serverNow = answer.serverDate === null ? answer.receivedAt : answer.serverDate + 500;
  if (newestStart !== null) serverNow = Math.min(Math.max(serverNow, newestStart), newestStart + intervalMs - 1);
  return serverNow - answer.receivedAt;
}
