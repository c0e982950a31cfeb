/**
 * Keeps the overview: one `GET /stats` at start, the feed's events applied as they come
 * (`applyEvent`, from `TaskSync`'s `onApplied`), and one more read each time a new 15 s
 * interval begins on the server's clock. That read is the page's only periodic request; the
 * service does not count it against the rate limit. At the boundary the window first moves
 * on locally, so the charts move even before the answer comes.
 */
import type { Api } from './api';
import {
  advanceTo,
  applyTaskEvent,
  currentEnd,
  overviewFromStats,
  serverOffsetMs,
  type Overview,
  type OverviewEvent,
} from './stats';
import type { Problem, Task } from './types';

export interface StatsSnapshot {
  overview: Overview | null;
  /** The last read's problem, until a read succeeds. */
  problem: Problem | null;
}

export interface StatsSyncOptions {
  api: Pick<Api, 'stats'>;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** How long after a boundary to read (the service samples each second). */
  marginMs?: number;
  /** Delay before reading again after a failure, when no boundary is known. */
  retryMs?: number;
}

export class StatsSync {
  private snapshot: StatsSnapshot = { overview: null, problem: null };
  private readonly listeners = new Set<() => void>();
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private timer: unknown = null;
  /** Server clock minus client clock, ms. */
  private offsetMs = 0;
  private running = false;
  private reads = 0;

  constructor(private readonly options: StatsSyncOptions) {
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer =
      options.clearTimer ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>));
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): StatsSnapshot => this.snapshot;

  private update(patch: Partial<StatsSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.read();
  }

  stop(): void {
    this.running = false;
    this.reads += 1; // an answer still on its way is dropped
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  /** An event the task list applied, with its task as known before. */
  applyEvent(event: OverviewEvent, previous: Task | undefined): void {
    const { overview } = this.snapshot;
    if (!overview) return; // the first read, when it comes, has it
    const next = applyTaskEvent(overview, event, previous);
    if (next !== overview) this.update({ overview: next });
  }

  /** Client time (ms) the current interval ends, by the server's clock as estimated. */
  boundaryAt(): number | null {
    const { overview } = this.snapshot;
    const end = overview ? currentEnd(overview) : null;
    return end === null ? null : end - this.offsetMs;
  }

  private async read(): Promise<void> {
    const read = ++this.reads;
    const result = await this.options.api.stats();
    if (read !== this.reads || !this.running) return;
    if (result.ok) {
      const overview = overviewFromStats(result.data.body);
      const newest = overview.intervals[overview.intervals.length - 1];
      this.offsetMs = serverOffsetMs(result.data, newest?.start ?? null, overview.intervalMs);
      this.update({ overview, problem: null });
    } else {
      this.update({ problem: result.problem });
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    const boundary = this.boundaryAt();
    const delay =
      boundary === null
        ? (this.options.retryMs ?? 15_000)
        : Math.max(1000, boundary + (this.options.marginMs ?? 750) - this.now());
    this.timer = this.setTimer(() => this.onBoundary(), delay);
  }

  private onBoundary(): void {
    this.timer = null;
    if (!this.running) return;
    const { overview } = this.snapshot;
    const end = overview ? currentEnd(overview) : null;
    if (overview && end !== null) {
      const serverNow = this.now() + this.offsetMs;
      const start = Math.max(end, Math.floor(serverNow / overview.intervalMs) * overview.intervalMs);
      this.update({ overview: advanceTo(overview, start) });
    }
    void this.read();
  }
}
