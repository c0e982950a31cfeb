/** Test doubles: a scriptable EventSource and a manual clock with timers. */
import type { EventSourceLike } from '../lib/feed';

export class FakeEventSource implements EventSourceLike {
  readyState = 0;
  closed = false;
  private readonly listeners = new Map<string, Array<(event: never) => void>>();

  constructor(readonly url: string) {}

  addEventListener(type: string, listener: (event: never) => void): void {
    const list = this.listeners.get(type) ?? [];
    list.push(listener);
    this.listeners.set(type, list);
  }

  close(): void {
    this.closed = true;
    this.readyState = 2;
  }

  private fire(type: string, event: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) (listener as (e: unknown) => void)(event);
  }

  open(): void {
    this.readyState = 1;
    this.fire('open', {});
  }

  emit(name: string, id: number | null, data: unknown): void {
    this.fire(name, { lastEventId: id === null ? '' : String(id), data: JSON.stringify(data) });
  }

  /** The browser lost the stream and reconnects by itself. */
  drop(): void {
    this.readyState = 0;
    this.fire('error', {});
  }

  /** Refused (a non-200 answer): the EventSource gives up for good. */
  refuse(): void {
    this.readyState = 2;
    this.fire('error', {});
  }
}

export class FakeClock {
  now = 1_000_000;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private nextId = 1;

  setTimer = (fn: () => void, ms: number): unknown => {
    const id = this.nextId++;
    this.timers.push({ at: this.now + ms, fn, id });
    return id;
  };

  clearTimer = (handle: unknown): void => {
    this.timers = this.timers.filter((t) => t.id !== handle);
  };

  pending(): number[] {
    return this.timers.map((t) => t.at - this.now);
  }

  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.now = due.at;
      due.fn();
    }
    this.now = until;
  }
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
}
