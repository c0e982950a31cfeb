/**
 * The one `EventSource('/events')` of the page, and what to do when it is refused.
 *
 * While the connection is open the browser reconnects by itself after a dropped stream (with
 * `Last-Event-ID`). An answer that is not a 200 (a 429, say) closes it for good, and an
 * `EventSource` cannot see why: when `readyState` becomes CLOSED this opens a new one after
 * `waitMs()` (the rate-limit countdown, if one runs) or else after a growing backoff,
 * resuming with `?last_event_id=` so no event is lost. A connection that opens with no event
 * id to resume from says so (`resumed: false`): the task list must then be loaded anew.
 */
import { TASK_EVENTS, type FeedEvent, type Task, type TaskEventName } from './types';

export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent<string>) => void): void;
  addEventListener(type: 'open' | 'error', listener: (event: Event) => void): void;
  close(): void;
}

export type FeedStatus =
  | { state: 'connecting' }
  /** Open; `resumed` if it carried on after an event id (else events may have been missed). */
  | { state: 'live'; resumed: boolean }
  /** The browser is reconnecting by itself. */
  | { state: 'reconnecting'; at: null }
  /** Closed; a new connection opens at `at` (client ms). */
  | { state: 'reconnecting'; at: number };

export interface FeedOptions {
  url: string;
  createEventSource: (url: string) => EventSourceLike;
  onEvent: (event: FeedEvent) => void;
  onStatus: (status: FeedStatus) => void;
  /**
   * Milliseconds to wait before reconnecting because of the rate limit, or null for the
   * backoff; may be a promise (to find out first).
   */
  waitMs?: () => number | null | Promise<number | null>;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Backoff after a failure with no rate limit known: first and largest delay. */
  backoffMs?: { first: number; max: number };
}

const CLOSED = 2;
const CONNECTING = 0;

/** Parses one SSE message; null if it is not one this page understands. */
export function parseFeedEvent(name: string, lastEventId: string, data: string): FeedEvent | null {
  const id = /^\d+$/.test(lastEventId) ? Number(lastEventId) : null;
  if (name === 'resync') return { id, name: 'resync' };
  if (!(TASK_EVENTS as readonly string[]).includes(name) || id === null) return null;
  try {
    const task = JSON.parse(data) as Task;
    if (!task || typeof task.task_id !== 'string') return null;
    return { id, name: name as TaskEventName, task };
  } catch {
    return null;
  }
}

export class LiveFeed {
  private source: EventSourceLike | null = null;
  private timer: unknown = null;
  private lastEventId: number | null = null;
  private failures = 0;
  private stopped = false;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly options: FeedOptions) {
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer =
      options.clearTimer ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>));
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.source?.close();
    this.source = null;
  }

  /** The URL of the next connection: resumes after the last event seen. */
  nextUrl(): string {
    if (this.lastEventId === null) return this.options.url;
    const sep = this.options.url.includes('?') ? '&' : '?';
    return `${this.options.url}${sep}last_event_id=${this.lastEventId}`;
  }

  private connect(): void {
    this.timer = null;
    if (this.stopped) return;
    this.options.onStatus(this.failures === 0 ? { state: 'connecting' } : { state: 'reconnecting', at: null });
    const source = this.options.createEventSource(this.nextUrl());
    this.source = source;
    const listener = (name: string) => (message: MessageEvent<string>) => {
      if (source !== this.source) return;
      const event = parseFeedEvent(name, message.lastEventId, message.data);
      if (!event) return;
      if (event.id !== null) this.lastEventId = Math.max(this.lastEventId ?? 0, event.id);
      this.options.onEvent(event);
    };
    for (const name of [...TASK_EVENTS, 'resync']) source.addEventListener(name, listener(name));
    source.addEventListener('open', () => {
      if (source !== this.source) return;
      this.failures = 0;
      this.options.onStatus({ state: 'live', resumed: this.lastEventId !== null });
    });
    source.addEventListener('error', () => {
      if (source !== this.source) return;
      if (source.readyState === CONNECTING) {
        this.options.onStatus({ state: 'reconnecting', at: null });
        return;
      }
      if (source.readyState === CLOSED) this.scheduleReconnect();
    });
  }

  /** Delay before the next attempt: the rate limit's, else 1 s, 2 s, 4 s... up to the max. */
  async retryDelayMs(): Promise<number> {
    const wait = await this.options.waitMs?.();
    if (wait !== null && wait !== undefined && wait > 0) return wait;
    const { first, max } = this.options.backoffMs ?? { first: 1000, max: 30_000 };
    return Math.min(max, first * 2 ** Math.max(0, this.failures - 1));
  }

  private scheduleReconnect(): void {
    this.source?.close();
    this.source = null;
    this.failures += 1;
    this.options.onStatus({ state: 'reconnecting', at: null });
    void this.retryDelayMs().then((delay) => {
      if (this.stopped || this.source !== null || this.timer !== null) return;
      this.options.onStatus({ state: 'reconnecting', at: this.now() + delay });
      this.timer = this.setTimer(() => this.connect(), delay);
    });
  }
}
