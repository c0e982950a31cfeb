/**
 * The task list as a pure reducer over three inputs: server-sent events, list loads
 * (`GET /tasks`) and single-task answers (submit, cancel, retry).
 *
 * Ordering rules:
 * - An event carries a strictly increasing id; one whose id is not above the last applied
 *   for its task is a duplicate or stale, and is ignored.
 * - A list load or an action's answer has no event id. Tasks move only forward
 *   (attempt, then queued -> processing -> finished, then progress), so `compareVersions`
 *   orders any two states of one task; nothing older than what is shown is ever applied.
 * - `task.expired` removes the task and leaves a tombstone, so a late event or a list loaded
 *   before the expiry cannot bring it back.
 * - `resync` (or `reload`) asks for a new list load (`reloadGeneration` goes up); when it
 *   arrives, tasks it lacks that nothing has touched since are dropped (they expired meanwhile,
 *   or fell out of the list's limit).
 */
import type { FeedEvent, Task, TaskStatus } from './types';

export interface Entry {
  task: Task;
  /** Id of the last event applied to this task; null if only known from a list or an answer. */
  eventId: number | null;
  /** Value of `clock` when this entry last changed. */
  touched: number;
}

export interface TasksState {
  byId: Readonly<Record<string, Entry>>;
  /** Expired task ids (tombstones), oldest first, with the expiry's event id. */
  expired: Readonly<Record<string, number>>;
  /** Counts changes; orders entries against a reload. */
  clock: number;
  /** Goes up each time the list must be (re)loaded; 0 until the first load is asked for. */
  reloadGeneration: number;
  /** Entries touched at or before this clock value may be dropped by the pending reload. */
  reloadSince: number;
  /** Whether the list of the current generation has been applied. */
  loaded: boolean;
}

export type TasksAction =
  | { type: 'event'; event: FeedEvent }
  | { type: 'listLoaded'; tasks: Task[]; generation: number }
  | { type: 'snapshot'; task: Task }
  /** The list must be read anew (the feed opened without a resume point). */
  | { type: 'reload' };

export const MAX_TOMBSTONES = 500;

export const initialTasksState: TasksState = {
  byId: {},
  expired: {},
  clock: 0,
  reloadGeneration: 0,
  reloadSince: 0,
  loaded: false,
};

const PHASE: Record<TaskStatus, number> = {
  queued: 0,
  processing: 1,
  completed: 2,
  failed: 2,
  cancelled: 2,
};

/** Orders two states of one task: negative if `a` is older than `b`, 0 if equally new. */
export function compareVersions(a: Task, b: Task): number {
  if (a.attempt !== b.attempt) return a.attempt - b.attempt;
  const phase = (PHASE[a.status] ?? 1) - (PHASE[b.status] ?? 1);
  if (phase !== 0) return phase;
  if (a.status === 'processing' && b.status === 'processing') return a.progress - b.progress;
  return 0;
}

function withTombstone(expired: Readonly<Record<string, number>>, taskId: string, id: number) {
  const next: Record<string, number> = { ...expired, [taskId]: id };
  const keys = Object.keys(next);
  for (let i = 0; i < keys.length - MAX_TOMBSTONES; i++) delete next[keys[i]!];
  return next;
}

function askForReload(state: TasksState): TasksState {
  return {
    ...state,
    reloadGeneration: state.reloadGeneration + 1,
    reloadSince: state.clock,
    loaded: false,
  };
}

function applyEvent(state: TasksState, event: FeedEvent): TasksState {
  if (event.name === 'resync') return askForReload(state);
  const { task, id } = event;
  const taskId = task.task_id;
  if (taskId in state.expired) return state;
  const existing = state.byId[taskId];
  const clock = state.clock + 1;
  if (event.name === 'task.expired') {
    const byId = { ...state.byId };
    delete byId[taskId];
    return { ...state, byId, clock, expired: withTombstone(state.expired, taskId, id) };
  }
  if (existing) {
    if (existing.eventId !== null && id <= existing.eventId) return state;
    if (compareVersions(task, existing.task) < 0) return state;
  }
  return {
    ...state,
    clock,
    byId: { ...state.byId, [taskId]: { task, eventId: id, touched: clock } },
  };
}

/** Applies a task state known without an event id, if it is newer than the one shown. */
function applySnapshot(state: TasksState, task: Task): TasksState {
  if (task.task_id in state.expired) return state;
  const existing = state.byId[task.task_id];
  if (existing && compareVersions(task, existing.task) <= 0) return state;
  const clock = state.clock + 1;
  const entry: Entry = { task, eventId: existing?.eventId ?? null, touched: clock };
  return { ...state, clock, byId: { ...state.byId, [task.task_id]: entry } };
}

function applyList(state: TasksState, tasks: Task[], generation: number): TasksState {
  if (generation !== state.reloadGeneration) return state; // an answer to an older request
  const listed = new Set(tasks.map((task) => task.task_id));
  const byId: Record<string, Entry> = {};
  for (const [taskId, entry] of Object.entries(state.byId)) {
    if (listed.has(taskId) || entry.touched > state.reloadSince) byId[taskId] = entry;
  }
  let next: TasksState = { ...state, byId, loaded: true };
  for (const task of tasks) next = applySnapshot(next, task);
  return next;
}

export function tasksReducer(state: TasksState, action: TasksAction): TasksState {
  switch (action.type) {
    case 'event':
      return applyEvent(state, action.event);
    case 'snapshot':
      return applySnapshot(state, action.task);
    case 'listLoaded':
      return applyList(state, action.tasks, action.generation);
    case 'reload':
      return askForReload(state);
  }
}

export interface TaskFilter {
  status?: TaskStatus | '';
  taskType?: string;
}

/** The tasks to show, newest first. */
export function selectTasks(state: TasksState, filter: TaskFilter = {}): Task[] {
  const tasks = Object.values(state.byId)
    .map((entry) => entry.task)
    .filter(
      (task) =>
        (!filter.status || task.status === filter.status) &&
        (!filter.taskType || task.task_type === filter.taskType),
    );
  return tasks.sort(newestFirst);
}

/**
 * Microseconds since the epoch of an RFC 3339 time (the server sends up to six fraction
 * digits and none at all when they are zero, so strings do not sort by time).
 */
export function timeKey(iso: string): number {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(iso);
  if (!match) return Date.parse(iso) * 1000;
  const fraction = (match[2] ?? '').padEnd(6, '0').slice(0, 6);
  return Date.parse(`${match[1]}${match[3]}`) * 1000 + Number(fraction);
}

export function newestFirst(a: Task, b: Task): number {
  const byTime = timeKey(b.created_at) - timeKey(a.created_at);
  if (byTime) return byTime;
  return a.task_id < b.task_id ? 1 : a.task_id > b.task_id ? -1 : 0;
}

export function countByStatus(state: TasksState): Record<TaskStatus, number> {
  const counts: Record<TaskStatus, number> = {
    queued: 0,
    processing: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
  };
  for (const { task } of Object.values(state.byId)) {
    if (task.status in counts) counts[task.status] += 1;
  }
  return counts;
}
