import { describe, expect, it } from 'vitest';
import { buildTimeline, mergeEvents, timelineEvent } from './timeline';
import type { Task, TimelineEvent } from './types';

const error = { type: 'TaskFailedError', message: 'simulated failure (failure_rate=1.0)' };

function ev(id: number, event: TimelineEvent['event'], at: string, attempt = 1, patch: Partial<TimelineEvent> = {}): TimelineEvent {
  const status: Record<TimelineEvent['event'], TimelineEvent['status']> = {
    'task.queued': 'queued',
    'task.processing': 'processing',
    'task.progress': 'processing',
    'task.completed': 'completed',
    'task.failed': 'failed',
    'task.cancelled': 'cancelled',
    'task.expired': 'failed',
  };
  return { id, event, at: `2026-11-22T08:00:${at}Z`, status: status[event], attempt, progress: 0, error: null, ...patch };
}

/** A task that failed, was retried, and failed again, as `GET /tasks/{id}/history` tells it. */
const retried: TimelineEvent[] = [
  ev(1, 'task.queued', '00'),
  ev(2, 'task.processing', '00.5'),
  ev(3, 'task.progress', '01', 1, { progress: 50 }),
  ev(4, 'task.progress', '02', 1, { progress: 99 }),
  ev(5, 'task.failed', '02.5', 1, { progress: 99, error }),
  ev(6, 'task.queued', '10', 2),
  ev(7, 'task.processing', '10', 2),
  ev(8, 'task.completed', '13', 2, { progress: 100 }),
];

describe('buildTimeline', () => {
  it('groups events by attempt: steps, progress, outcome, error and run time', () => {
    const { attempts, complete } = buildTimeline(retried);
    expect(complete).toBe(true);
    expect(attempts).toHaveLength(2);
    expect(attempts[0]).toEqual({
      attempt: 1,
      steps: [
        { id: 1, kind: 'queued', at: '2026-11-22T08:00:00Z' },
        { id: 2, kind: 'started', at: '2026-11-22T08:00:00.5Z' },
        { id: 5, kind: 'failed', at: '2026-11-22T08:00:02.5Z' },
      ],
      progress: { updates: 2, last: 99 },
      outcome: 'failed',
      error,
      runS: 2,
    });
    expect(attempts[1]).toMatchObject({ attempt: 2, outcome: 'completed', error: null, progress: null, runS: 3 });
  });

  it('says when the history no longer starts with the task’s creation', () => {
    expect(buildTimeline(retried.slice(5)).complete).toBe(false);
    expect(buildTimeline([]).complete).toBe(false);
    expect(buildTimeline([]).attempts).toEqual([]);
  });

  it('an attempt under way has no outcome; an expiry stays with the last attempt', () => {
    const running = buildTimeline(retried.slice(0, 3));
    expect(running.attempts[0]).toMatchObject({ outcome: null, runS: null, progress: { updates: 1, last: 50 } });
    const expired = buildTimeline([...retried, ev(9, 'task.expired', '59', 2)]);
    expect(expired.attempts).toHaveLength(2);
    expect(expired.attempts[1]!.steps.at(-1)).toMatchObject({ kind: 'expired' });
  });
});

describe('mergeEvents', () => {
  it('keeps each event once, by id, oldest first', () => {
    const live = [retried[7]!, retried[6]!, ev(9, 'task.expired', '59', 2)];
    expect(mergeEvents(retried, live).map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(mergeEvents([], live).map((e) => e.id)).toEqual([7, 8, 9]);
  });
});

describe('timelineEvent', () => {
  const task: Task = {
    task_id: 'a',
    task_type: 'unstable_task',
    status: 'failed',
    priority: 'normal',
    parameters: {},
    progress: 99,
    eta_s: null,
    result: null,
    error,
    attempt: 2,
    created_at: '2026-11-22T08:00:00Z',
    started_at: '2026-11-22T08:00:10Z',
    finished_at: '2026-11-22T08:00:12Z',
  };
  const received = '2026-11-22T08:00:12.3Z';

  it('takes the time from the task where it has one, else when it arrived', () => {
    expect(timelineEvent({ id: 9, name: 'task.failed', task }, received)).toEqual({
      id: 9,
      event: 'task.failed',
      at: '2026-11-22T08:00:12Z',
      status: 'failed',
      attempt: 2,
      progress: 99,
      error,
    });
    const processing = { ...task, status: 'processing' as const, finished_at: null, error: null };
    expect(timelineEvent({ id: 8, name: 'task.processing', task: processing }, received).at).toBe('2026-11-22T08:00:10Z');
    expect(timelineEvent({ id: 8, name: 'task.progress', task: processing }, received).at).toBe(received);
    const requeued = { ...processing, status: 'queued' as const, started_at: null };
    expect(timelineEvent({ id: 7, name: 'task.queued', task: requeued }, received).at).toBe(received);
    expect(timelineEvent({ id: 1, name: 'task.queued', task: { ...requeued, attempt: 1 } }, received).at).toBe(
      '2026-11-22T08:00:00Z',
    );
  });
});
