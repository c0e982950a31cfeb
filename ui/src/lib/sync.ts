/**
 * Keeps the page's picture of the service: the task list (one `EventSource` plus a list load
 * when the feed opens without a resume point or says `resync`), the connection, and the rate
 * limit (the latest `RateLimit` fields and the countdown of the latest 429).
 *
 * Why the list loads after the feed opens: `GET /tasks` carries no event id, so a list read
 * before the subscription exists could miss an event that falls between the two. Opened in
 * this order, anything that happens after the list is read also comes as an event, and the
 * reducer drops whatever the list already had.
 *
 * Requests are few: never a poll; one list load per fresh connection or `resync`; after a
 * refusal, a reconnect when the countdown ends (or after a backoff).
 */
import { Api, type RateInfo, type Result, type SubmitBody } from './api';
import { withAccessToken } from './auth';
import { LiveFeed, type EventSourceLike, type FeedStatus } from './feed';
import { initialTasksState, tasksReducer, type TasksAction, type TasksState } from './tasks';
import type { FeedEvent, Problem, Task } from './types';

export const LIST_LIMIT = 200;

export type ListStatus =
  | { state: 'idle' }
  | { state: 'loading' }
  | { state: 'loaded' }
  /** Refused by the rate limit; loads again once the countdown ends. */
  | { state: 'waiting' }
  | { state: 'error'; problem: Problem };

export interface SyncSnapshot {
  tasks: TasksState;
  feed: FeedStatus;
  list: ListStatus;
  rate: RateInfo | null;
  /** Client time (ms) the latest 429's Retry-After ends; null when none is running. */
  limitedUntil: number | null;
}

export interface SyncOptions {
  api?: Api;
  fetch?: typeof fetch;
  createEventSource?: (url: string) => EventSourceLike;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Called with each event as it is applied (for announcements). */
  onEvent?: (event: FeedEvent) => void;
  /**
   * Called with each task event that changed the list (not a duplicate or a stale one), with
   * the task as it was before (undefined if it was not known): for figures kept from events.
   */
  onApplied?: (event: TaskFeedEvent, previous: Task | undefined) => void;
  /** The API key: sent with every request, and as `?access_token=` on the feed. */
  apiKey?: string | null;
  /** Called when an answer is a 401 (the key is no longer accepted). */
  onUnauthorized?: (problem: Problem) => void;
}

/** A feed event about one task (every event but `resync`). */
export type TaskFeedEvent = Exclude<FeedEvent, { name: 'resync' }>;

export class TaskSync {
  readonly api: Api;
  private snapshot: SyncSnapshot = {
    tasks: initialTasksState,
    feed: { state: 'connecting' },
    list: { state: 'idle' },
    rate: null,
    limitedUntil: null,
  };
  private readonly listeners = new Set<() => void>();
  private readonly eventListeners = new Set<(event: FeedEvent) => void>();
  private readonly feed: LiveFeed;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private requestedGeneration = 0;
  private listLoad: Promise<void> | null = null;
  private listRetry: unknown = null;

  constructor(private readonly options: SyncOptions = {}) {
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer =
      options.clearTimer ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>));
    this.api =
      options.api ??
      new Api({
        ...(options.fetch ? { fetch: options.fetch } : {}),
        now: this.now,
        onRate: (rate) => this.update({ rate }),
        onLimited: (until) => this.update({ limitedUntil: until }),
        apiKey: options.apiKey ?? null,
        ...(options.onUnauthorized ? { onUnauthorized: options.onUnauthorized } : {}),
      });
    this.feed = new LiveFeed({
      url: withAccessToken('/events', options.apiKey ?? null),
      createEventSource:
        options.createEventSource ?? ((url) => new EventSource(url) as EventSourceLike),
      onEvent: (event) => {
        this.applyEvent(event);
        options.onEvent?.(event);
        for (const listener of this.eventListeners) listener(event);
      },
      onStatus: (feed) => this.onFeedStatus(feed),
      waitMs: () => this.waitBeforeReconnect(),
      now: this.now,
      setTimer: this.setTimer,
      clearTimer: this.clearTimer,
    });
  }

  // --- store interface (useSyncExternalStore) ---

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): SyncSnapshot => this.snapshot;

  /** Every event of the feed as it arrives (a detail panel follows its task's). */
  subscribeEvents = (listener: (event: FeedEvent) => void): (() => void) => {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  };

  private update(patch: Partial<SyncSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener();
  }

  private applyEvent(event: FeedEvent): void {
    if (event.name === 'resync') {
      this.dispatch({ type: 'event', event });
      return;
    }
    const taskId = event.task.task_id;
    const before = this.snapshot.tasks;
    this.dispatch({ type: 'event', event });
    const after = this.snapshot.tasks;
    const applied =
      event.name === 'task.expired'
        ? taskId in after.expired && !(taskId in before.expired)
        : after.byId[taskId] !== before.byId[taskId];
    if (applied) this.options.onApplied?.(event, before.byId[taskId]?.task);
  }

  private dispatch(action: TasksAction): void {
    const tasks = tasksReducer(this.snapshot.tasks, action);
    if (tasks !== this.snapshot.tasks) this.update({ tasks });
    if (tasks.reloadGeneration > this.requestedGeneration) this.loadList();
  }

  // --- lifecycle ---

  start(): void {
    this.feed.start();
  }

  stop(): void {
    this.feed.stop();
    if (this.listRetry !== null) this.clearTimer(this.listRetry);
    this.listRetry = null;
  }

  /** Milliseconds until the rate limit lets a request through, as far as is known. */
  rateWaitMs(): number | null {
    const now = this.now();
    const { limitedUntil, rate } = this.snapshot;
    if (limitedUntil !== null && limitedUntil > now) return limitedUntil - now;
    if (rate && rate.remaining <= 0) {
      const reset = rate.at + rate.resetS * 1000;
      if (reset > now) return reset - now;
    }
    return null;
  }

  private async waitBeforeReconnect(): Promise<number | null> {
    const known = this.rateWaitMs();
    if (known !== null) return known;
    // An EventSource cannot see why it was refused. If no list has been read yet, reading it
    // now is needed anyway and tells: a 429 starts the countdown the reconnect then waits for.
    if (this.snapshot.list.state === 'idle') {
      this.dispatch({ type: 'reload' });
      await this.listLoad;
      return this.rateWaitMs();
    }
    return null;
  }

  private onFeedStatus(feed: FeedStatus): void {
    this.update({ feed });
    if (feed.state !== 'live') return;
    const { list } = this.snapshot;
    if (!feed.resumed) {
      // A new subscription: events before it were not received, so read the list after it.
      this.dispatch({ type: 'reload' });
    } else if (list.state === 'waiting' || list.state === 'idle') {
      this.loadList(true);
    }
  }

  // --- the list ---

  /** Loads the list for the reducer's current generation (again, with `force`). */
  loadList(force = false): void {
    const generation = this.snapshot.tasks.reloadGeneration;
    if (generation <= 0 || (!force && generation <= this.requestedGeneration)) return;
    this.requestedGeneration = generation;
    if (this.listRetry !== null) this.clearTimer(this.listRetry);
    this.listRetry = null;
    this.update({ list: { state: 'loading' } });
    const load = this.api.listTasks(LIST_LIMIT).then((result) => {
      if (generation !== this.snapshot.tasks.reloadGeneration) return; // a newer load runs
      if (result.ok) {
        this.dispatch({ type: 'listLoaded', tasks: result.data, generation });
        this.update({ list: { state: 'loaded' } });
      } else if (result.status === 429) {
        this.update({ list: { state: 'waiting' } });
        // With the feed live, try again when the countdown ends; else its opening will.
        if (this.snapshot.feed.state === 'live') {
          this.listRetry = this.setTimer(() => {
            this.listRetry = null;
            this.loadList(true);
          }, this.rateWaitMs() ?? 1000);
        }
      } else {
        this.update({ list: { state: 'error', problem: result.problem } });
      }
    });
    this.listLoad = load;
  }

  /** "Try again" after a failed list load. */
  retryList(): void {
    this.loadList(true);
  }

  // --- actions ---

  private async act(result: Promise<Result<Task>>): Promise<Result<Task>> {
    const answer = await result;
    if (answer.ok) this.dispatch({ type: 'snapshot', task: answer.data });
    return answer;
  }

  submit(body: SubmitBody): Promise<Result<Task>> {
    return this.act(this.api.submit(body));
  }

  cancel(taskId: string): Promise<Result<Task>> {
    return this.act(this.api.cancel(taskId));
  }

  retry(taskId: string): Promise<Result<Task>> {
    return this.act(this.api.retry(taskId));
  }
}
