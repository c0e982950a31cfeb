/**
 * A task's timeline for the detail panel: `GET /tasks/{id}/history`, with the feed's events
 * for the task merged in as they come (by event id, so one read twice counts once), grouped by
 * attempt: when it was queued, started and ended, its progress, and the error of a failed one.
 */
import { timeKey } from './tasks';
import type { Outcome, Task, TaskError, TimelineEvent } from './types';

/**
 * A feed event about a task as a timeline event. The feed carries the task, not when the event
 * was recorded: that is the task's own time for it where it has one, else `receivedAt`.
 */
export function timelineEvent(
  event: { id: number; name: TimelineEvent['event']; task: Task },
  receivedAt: string,
): TimelineEvent {
  const { task } = event;
  let at: string | null = null;
  if (event.name === 'task.queued' && task.attempt === 1) at = task.created_at;
  else if (event.name === 'task.processing') at = task.started_at;
  else if (event.name === 'task.completed' || event.name === 'task.failed' || event.name === 'task.cancelled') {
    at = task.finished_at;
  }
  return {
    id: event.id,
    event: event.name,
    at: at ?? receivedAt,
    status: task.status,
    attempt: task.attempt,
    progress: task.progress,
    error: task.error,
  };
}

/** Both lists' events, each once, oldest first. */
export function mergeEvents(a: readonly TimelineEvent[], b: readonly TimelineEvent[]): TimelineEvent[] {
  const byId = new Map<number, TimelineEvent>();
  for (const event of [...a, ...b]) if (!byId.has(event.id)) byId.set(event.id, event);
  return [...byId.values()].sort((x, y) => x.id - y.id);
}

export interface Step {
  id: number;
  kind: 'queued' | 'started' | Outcome | 'expired';
  at: string;
}

export interface Attempt {
  attempt: number;
  steps: Step[];
  /** Progress events: how many, and the last value. */
  progress: { updates: number; last: number } | null;
  outcome: Outcome | null;
  error: TaskError | null;
  /** Seconds from start to end, when both are in the history. */
  runS: number | null;
}

export interface Timeline {
  attempts: Attempt[];
  /** Whether the history starts with the task's creation (older events may have been dropped). */
  complete: boolean;
}

const KIND: Record<TimelineEvent['event'], Step['kind'] | null> = {
  'task.queued': 'queued',
  'task.processing': 'started',
  'task.progress': null,
  'task.completed': 'completed',
  'task.failed': 'failed',
  'task.cancelled': 'cancelled',
  'task.expired': 'expired',
};

/** The events (oldest first) as attempts. */
export function buildTimeline(events: readonly TimelineEvent[]): Timeline {
  const attempts: Attempt[] = [];
  for (const event of events) {
    let current = attempts[attempts.length - 1];
    if (!current || (event.attempt !== current.attempt && event.event !== 'task.expired')) {
      current = { attempt: event.attempt, steps: [], progress: null, outcome: null, error: null, runS: null };
      attempts.push(current);
    }
    const kind = KIND[event.event];
    if (kind === null) {
      current.progress = { updates: (current.progress?.updates ?? 0) + 1, last: event.progress };
      continue;
    }
    current.steps.push({ id: event.id, kind, at: event.at });
    if (kind === 'completed' || kind === 'failed' || kind === 'cancelled') {
      current.outcome = kind;
      current.error = event.error;
      const started = current.steps.find((s) => s.kind === 'started');
      current.runS = started ? Math.max(0, (timeKey(event.at) - timeKey(started.at)) / 1e6) : null;
    }
  }
  const first = events[0];
  return { attempts, complete: !!first && first.event === 'task.queued' && first.attempt === 1 };
}
