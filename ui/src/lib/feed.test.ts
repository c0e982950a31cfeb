import { describe, expect, it } from 'vitest';
import { FakeClock, FakeEventSource, flush } from '../test/fakes';
import { LiveFeed, parseFeedEvent, type FeedStatus } from './feed';
import type { FeedEvent } from './types';

const TASK = { task_id: 't1', status: 'queued' };

function setup(waitMs: () => number | null = () => null) {
  const clock = new FakeClock();
  const sources: FakeEventSource[] = [];
  const events: FeedEvent[] = [];
  const statuses: FeedStatus[] = [];
  const feed = new LiveFeed({
    url: '/events',
    createEventSource: (url) => {
      const source = new FakeEventSource(url);
      sources.push(source);
      return source;
    },
    onEvent: (e) => events.push(e),
    onStatus: (s) => statuses.push(s),
    waitMs,
    now: () => clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
  });
  return { clock, sources, events, statuses, feed, last: () => sources[sources.length - 1]! };
}

describe('parseFeedEvent', () => {
  it('parses task events and resync, and rejects the rest', () => {
    expect(parseFeedEvent('task.queued', '5', JSON.stringify(TASK))).toEqual({ id: 5, name: 'task.queued', task: TASK });
    expect(parseFeedEvent('resync', '', '{}')).toEqual({ id: null, name: 'resync' });
    expect(parseFeedEvent('task.queued', '', JSON.stringify(TASK))).toBeNull();
    expect(parseFeedEvent('task.queued', '5', 'not json')).toBeNull();
    expect(parseFeedEvent('task.queued', '5', '{}')).toBeNull();
    expect(parseFeedEvent('task.unknown', '5', JSON.stringify(TASK))).toBeNull();
  });
});

describe('LiveFeed', () => {
  it('opens one EventSource, reports live, passes events on', () => {
    const { feed, sources, events, statuses, last } = setup();
    feed.start();
    expect(sources.map((s) => s.url)).toEqual(['/events']);
    last().open();
    last().emit('task.queued', 7, TASK);
    last().emit('resync', null, {});
    expect(statuses).toEqual([{ state: 'connecting' }, { state: 'live', resumed: false }]);
    expect(events).toEqual([
      { id: 7, name: 'task.queued', task: TASK },
      { id: null, name: 'resync' },
    ]);
  });

  it('leaves a dropped stream to the browser, which resumes by itself', () => {
    const { feed, sources, statuses, last, clock } = setup();
    feed.start();
    last().open();
    last().emit('task.queued', 7, TASK);
    last().drop();
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', at: null });
    last().open();
    expect(statuses.at(-1)).toEqual({ state: 'live', resumed: true });
    expect(sources).toHaveLength(1);
    expect(clock.pending()).toEqual([]);
  });

  it('after a refusal, reconnects after a backoff that grows, resuming after the last id', async () => {
    const { feed, sources, statuses, last, clock } = setup();
    feed.start();
    last().open();
    last().emit('task.progress', 41, TASK);
    last().refuse();
    await flush();
    expect(last().closed).toBe(true);
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', at: clock.now + 1000 });
    clock.advance(999);
    expect(sources).toHaveLength(1);
    clock.advance(1);
    expect(sources).toHaveLength(2);
    expect(last().url).toBe('/events?last_event_id=41');
    last().refuse();
    await flush();
    expect(clock.pending()).toEqual([2000]);
    clock.advance(2000);
    last().refuse();
    await flush();
    expect(clock.pending()).toEqual([4000]);
    clock.advance(4000);
    last().open();
    expect(statuses.at(-1)).toEqual({ state: 'live', resumed: true });
    // success resets the backoff
    last().refuse();
    await flush();
    expect(clock.pending()).toEqual([1000]);
  });

  it('waits for the rate-limit countdown instead, when one runs', async () => {
    let wait: number | null = 42_000;
    const { feed, sources, last, clock } = setup(() => wait);
    feed.start();
    last().refuse();
    await flush();
    expect(clock.pending()).toEqual([42_000]);
    wait = null;
    clock.advance(42_000);
    expect(sources).toHaveLength(2);
    expect(last().url).toBe('/events'); // nothing to resume from
    last().open();
  });

  it('ignores a stale source and stops cleanly', async () => {
    const { feed, sources, events, last, clock } = setup();
    feed.start();
    const first = last();
    first.refuse();
    await flush();
    clock.advance(1000);
    first.emit('task.queued', 1, TASK); // from the closed one: ignored
    expect(events).toEqual([]);
    feed.stop();
    expect(last().closed).toBe(true);
    expect(sources).toHaveLength(2);
    last().refuse();
    await flush();
    expect(clock.pending()).toEqual([]);
  });
});
