import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  countByStatus,
  initialTasksState,
  MAX_TOMBSTONES,
  selectTasks,
  tasksReducer,
  timeKey,
  type TasksAction,
  type TasksState,
} from './tasks';
import type { FeedEvent, Task, TaskEventName } from './types';

const ID_A = '00000000-0000-4000-8000-00000000000a';
const ID_B = '00000000-0000-4000-8000-00000000000b';

function task(overrides: Partial<Task> = {}): Task {
  return {
    task_id: ID_A,
    task_type: 'compute_sum',
    status: 'queued',
    priority: 'normal',
    parameters: { numbers: [1, 2] },
    progress: 0,
    eta_s: null,
    result: null,
    error: null,
    attempt: 1,
    created_at: '2026-11-22T08:00:00.000001Z',
    started_at: null,
    finished_at: null,
    ...overrides,
  };
}

const ev = (id: number, name: TaskEventName, t: Task): TasksAction => ({
  type: 'event',
  event: { id, name, task: t } as FeedEvent,
});

function run(actions: TasksAction[], state: TasksState = initialTasksState): TasksState {
  return actions.reduce(tasksReducer, state);
}

const queued = task();
const processing = (progress: number) =>
  task({ status: 'processing', progress, started_at: '2026-11-22T08:00:01Z', eta_s: 2 });
const completed = task({ status: 'completed', progress: 100, result: { sum: 3 } });
const failed = task({ status: 'failed', progress: 99, error: { type: 'E', message: 'm' } });

describe('events', () => {
  it('upserts by task_id in event order', () => {
    const state = run([ev(1, 'task.queued', queued), ev(2, 'task.processing', processing(0))]);
    expect(Object.keys(state.byId)).toEqual([ID_A]);
    expect(state.byId[ID_A]?.task.status).toBe('processing');
    expect(state.byId[ID_A]?.eventId).toBe(2);
    const next = run([ev(3, 'task.progress', processing(40)), ev(4, 'task.completed', completed)], state);
    expect(next.byId[ID_A]?.task).toEqual(completed);
  });

  it('ignores duplicates', () => {
    const state = run([ev(1, 'task.queued', queued), ev(2, 'task.progress', processing(50))]);
    const again = run([ev(2, 'task.progress', processing(50))], state);
    expect(again).toBe(state);
  });

  it('ignores an event older than the one applied', () => {
    const state = run([ev(1, 'task.queued', queued), ev(5, 'task.completed', completed)]);
    const late = run([ev(3, 'task.progress', processing(30)), ev(2, 'task.processing', processing(0))], state);
    expect(late.byId[ID_A]?.task.status).toBe('completed');
    expect(late).toBe(state);
  });

  it('keeps tasks independent: an old id for one task does not block another', () => {
    const state = run([ev(10, 'task.queued', queued), ev(3, 'task.queued', task({ task_id: ID_B }))]);
    expect(Object.keys(state.byId).sort()).toEqual([ID_A, ID_B]);
  });

  it('applies a retry (a later attempt) after a failure', () => {
    const retried = task({ attempt: 2 });
    const state = run([ev(1, 'task.failed', failed), ev(2, 'task.queued', retried)]);
    expect(state.byId[ID_A]?.task).toEqual(retried);
  });

  it('removes on task.expired and never brings the task back', () => {
    const state = run([ev(1, 'task.queued', queued), ev(2, 'task.completed', completed), ev(3, 'task.expired', completed)]);
    expect(state.byId[ID_A]).toBeUndefined();
    expect(state.expired[ID_A]).toBe(3);
    const late = run(
      [
        ev(2, 'task.completed', completed),
        { type: 'snapshot', task: completed },
      ],
      state,
    );
    expect(late.byId[ID_A]).toBeUndefined();
    // nor does a list read before the expiry
    const reloaded = run([{ type: 'reload' }], late);
    const listed = run([{ type: 'listLoaded', tasks: [completed], generation: reloaded.reloadGeneration }], reloaded);
    expect(listed.byId[ID_A]).toBeUndefined();
  });

  it('bounds the tombstones', () => {
    let state = initialTasksState;
    for (let i = 0; i < MAX_TOMBSTONES + 5; i++) {
      state = tasksReducer(state, ev(i + 1, 'task.expired', task({ task_id: `t${i}` })));
    }
    expect(Object.keys(state.expired)).toHaveLength(MAX_TOMBSTONES);
    expect('t0' in state.expired).toBe(false);
    expect(`t${MAX_TOMBSTONES + 4}` in state.expired).toBe(true);
  });
});

describe('list loads and snapshots', () => {
  it('starts with no load asked; reload asks for generation 1', () => {
    expect(initialTasksState.reloadGeneration).toBe(0);
    const state = run([{ type: 'reload' }]);
    expect(state.reloadGeneration).toBe(1);
    expect(state.loaded).toBe(false);
  });

  it('merges a list with events applied before it, keeping the newer state of each', () => {
    const state = run([{ type: 'reload' }, ev(7, 'task.completed', completed)]);
    const listed = run(
      [
        {
          type: 'listLoaded',
          generation: 1,
          tasks: [processing(20), task({ task_id: ID_B, status: 'failed' })],
        },
      ],
      state,
    );
    expect(listed.loaded).toBe(true);
    expect(listed.byId[ID_A]?.task.status).toBe('completed'); // the list was older
    expect(listed.byId[ID_A]?.eventId).toBe(7);
    expect(listed.byId[ID_B]?.task.status).toBe('failed');
    expect(listed.byId[ID_B]?.eventId).toBeNull();
  });

  it('does not regress a task from a list to an older event after a reload', () => {
    const state = run([
      { type: 'reload' },
      { type: 'listLoaded', generation: 1, tasks: [completed] },
      ev(4, 'task.progress', processing(80)), // replayed or late: older than the list
      ev(3, 'task.processing', processing(0)),
    ]);
    expect(state.byId[ID_A]?.task.status).toBe('completed');
  });

  it('ignores the answer to an older load', () => {
    const state = run([{ type: 'reload' }, { type: 'reload' }]);
    expect(run([{ type: 'listLoaded', generation: 1, tasks: [queued] }], state)).toBe(state);
  });

  it('on resync asks for a reload, then drops tasks the new list lacks unless touched since', () => {
    let state = run([
      { type: 'reload' },
      { type: 'listLoaded', generation: 1, tasks: [completed, task({ task_id: ID_B })] },
    ]);
    state = tasksReducer(state, { type: 'event', event: { id: null, name: 'resync' } });
    expect(state.reloadGeneration).toBe(2);
    expect(state.loaded).toBe(false);
    const ID_C = '00000000-0000-4000-8000-00000000000c';
    state = run([ev(100, 'task.queued', task({ task_id: ID_C }))], state); // after the resync
    state = run([{ type: 'listLoaded', generation: 2, tasks: [task({ task_id: ID_B, status: 'processing' })] }], state);
    expect(state.byId[ID_A]).toBeUndefined(); // expired while we were away
    expect(state.byId[ID_B]?.task.status).toBe('processing');
    expect(state.byId[ID_C]).toBeDefined(); // newer than the list
  });

  it('applies an action answer only if it is newer', () => {
    let state = run([ev(1, 'task.processing', processing(50))]);
    const cancelled = task({ status: 'cancelled' });
    state = run([{ type: 'snapshot', task: cancelled }], state);
    expect(state.byId[ID_A]?.task.status).toBe('cancelled');
    expect(state.byId[ID_A]?.eventId).toBe(1);
    // the cancel event then arrives: same version, later id: applied, no regression
    state = run([ev(2, 'task.cancelled', cancelled)], state);
    expect(state.byId[ID_A]?.eventId).toBe(2);
    expect(run([{ type: 'snapshot', task: processing(10) }], state)).toBe(state);
  });
});

describe('ordering and selection', () => {
  it('orders versions by attempt, phase, then progress', () => {
    expect(compareVersions(processing(10), queued)).toBeGreaterThan(0);
    expect(compareVersions(processing(10), processing(20))).toBeLessThan(0);
    expect(compareVersions(completed, processing(99))).toBeGreaterThan(0);
    expect(compareVersions(task({ attempt: 2 }), failed)).toBeGreaterThan(0);
    expect(compareVersions(failed, failed)).toBe(0);
  });

  it('reads times with any number of fraction digits', () => {
    expect(timeKey('2026-11-22T08:00:00Z')).toBeLessThan(timeKey('2026-11-22T08:00:00.000001Z'));
    expect(timeKey('2026-11-22T08:00:00.5Z')).toBe(timeKey('2026-11-22T08:00:00.500000Z'));
  });

  it('selects newest first, filtered by status and type', () => {
    const older = task({ task_id: ID_B, created_at: '2026-11-22T07:59:59.9Z', task_type: 'unstable_task', status: 'failed' });
    const newer = task({ created_at: '2026-11-22T08:00:00Z' });
    const state = run([ev(1, 'task.failed', older), ev(2, 'task.queued', newer)]);
    expect(selectTasks(state).map((t) => t.task_id)).toEqual([ID_A, ID_B]);
    expect(selectTasks(state, { status: 'failed' }).map((t) => t.task_id)).toEqual([ID_B]);
    expect(selectTasks(state, { taskType: 'compute_sum' }).map((t) => t.task_id)).toEqual([ID_A]);
    expect(selectTasks(state, { status: 'failed', taskType: 'compute_sum' })).toEqual([]);
    expect(countByStatus(state)).toMatchObject({ queued: 1, failed: 1, processing: 0 });
  });
});
