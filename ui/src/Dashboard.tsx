import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { Icon } from './components/Icon';
import { Overview } from './components/Overview';
import { SessionControls } from './components/SessionControls';
import { StatusBar } from './components/StatusBar';
import { SubmitForm } from './components/SubmitForm';
import { TaskDetail } from './components/TaskDetail';
import { TaskTable } from './components/TaskTable';
import { TopBar } from './components/TopBar';
import { useCountdown } from './hooks';
import { describeProblem, type Result, type SubmitBody } from './lib/api';
import { describeScope, showsOwners } from './lib/auth';
import { shortId } from './lib/format';
import { StatsSync } from './lib/statsSync';
import { TaskSync } from './lib/sync';
import { countByStatus, selectTasks } from './lib/tasks';
import type { FeedEvent, Identity, Problem, Task, TaskStatus, TaskType } from './lib/types';

const FINAL = new Set(['task.completed', 'task.failed', 'task.cancelled']);

type TypesState = { state: 'loading' } | { state: 'loaded'; types: TaskType[] } | { state: 'error'; problem: Problem };

interface Props {
  /** The API key to send (null with keys off). */
  apiKey: string | null;
  identity: Identity;
  onSignOut: () => void;
  /** An answer was a 401: the key is no longer accepted. */
  onUnauthorized: () => void;
}

/** The task and event stores of one signed-in page (or of an open service). */
function createStores(apiKey: string | null, onUnauthorized: () => void, onEvent: (event: FeedEvent) => void) {
  let stats: StatsSync | null = null;
  const sync = new TaskSync({
    apiKey,
    onUnauthorized,
    onEvent,
    onApplied: (event, previous) => stats?.applyEvent(event, previous),
  });
  stats = new StatsSync({ api: sync.api });
  return { sync, stats };
}

/** The dashboard: overview, form, task table and detail, kept live by one EventSource. */
export function Dashboard({ apiKey, identity, onSignOut, onUnauthorized }: Props) {
  const [announcement, setAnnouncement] = useState('');
  const announce = useCallback((text: string) => {
    // A changed string is announced; repeat a message by making it differ invisibly.
    setAnnouncement((previous) => (previous === text ? `${text}\u00a0` : text));
  }, []);

  /** Tasks this page submitted or acted on: their endings are announced. */
  const mine = useRef(new Set<string>());
  const onEvent = useRef<(event: FeedEvent) => void>(() => {});
  onEvent.current = (event) => {
    if (event.name === 'resync' || !FINAL.has(event.name) || !mine.current.has(event.task.task_id)) return;
    const { task } = event;
    announce(`${task.task_type} task ${shortId(task.task_id)} ${task.status}.`);
  };

  const unauthorized = useRef(onUnauthorized);
  unauthorized.current = onUnauthorized;
  const [{ sync, stats }] = useState(() =>
    createStores(
      apiKey,
      () => unauthorized.current(),
      (event) => onEvent.current(event),
    ),
  );
  useEffect(() => {
    sync.start();
    stats.start();
    return () => {
      sync.stop();
      stats.stop();
    };
  }, [sync, stats]);
  const snap = useSyncExternalStore(sync.subscribe, sync.getSnapshot);

  // Task types: not rate limited, read once.
  const [types, setTypes] = useState<TypesState>({ state: 'loading' });
  const loadTypes = useCallback(() => {
    setTypes({ state: 'loading' });
    void sync.api.taskTypes().then((result) =>
      setTypes(result.ok ? { state: 'loaded', types: result.data } : { state: 'error', problem: result.problem }),
    );
  }, [sync]);
  useEffect(loadTypes, [loadTypes]);

  // Rate limit: countdown, with announcements when it starts and ends.
  const limitedS = useCountdown(snap.limitedUntil);
  const wasLimited = useRef(false);
  useEffect(() => {
    if (limitedS > 0 && !wasLimited.current) {
      announce(`Rate limit reached. Try again in ${limitedS} seconds.`);
    } else if (limitedS === 0 && wasLimited.current) {
      announce('The rate limit countdown has ended.');
    }
    wasLimited.current = limitedS > 0;
  }, [limitedS, announce]);

  // Connection changes worth hearing about.
  const feedState = snap.feed.state;
  const wasLive = useRef(false);
  const wasLiveOnce = useRef(false);
  useEffect(() => {
    if (feedState === 'live' && wasLive.current === false) {
      if (wasLiveOnce.current) announce('Live updates reconnected.');
      wasLiveOnce.current = true;
    } else if (feedState === 'reconnecting' && wasLive.current) {
      announce('Live updates lost; reconnecting.');
    }
    wasLive.current = feedState === 'live';
  }, [feedState, announce]);

  // Filters and selection.
  const [status, setStatus] = useState<TaskStatus | ''>('');
  const [taskType, setTaskType] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const all = useMemo(() => selectTasks(snap.tasks), [snap.tasks]);
  const shown = useMemo(() => selectTasks(snap.tasks, { status, taskType }), [snap.tasks, status, taskType]);
  const counts = useMemo(() => countByStatus(snap.tasks), [snap.tasks]);
  const typeNames = useMemo(() => {
    const names = new Set(types.state === 'loaded' ? types.types.map((t) => t.task_type) : []);
    for (const task of all) names.add(task.task_type);
    return [...names];
  }, [types, all]);

  // Actions.
  const [busy, setBusy] = useState<ReadonlySet<string>>(new Set());
  const [actionError, setActionError] = useState<string | null>(null);
  const act = useCallback(
    async (task: Task, verb: 'cancel' | 'retry') => {
      mine.current.add(task.task_id);
      setBusy((ids) => new Set(ids).add(task.task_id));
      setActionError(null);
      const result = verb === 'cancel' ? await sync.cancel(task.task_id) : await sync.retry(task.task_id);
      setBusy((ids) => {
        const next = new Set(ids);
        next.delete(task.task_id);
        return next;
      });
      const name = `${task.task_type} task ${shortId(task.task_id)}`;
      if (result.ok) {
        announce(verb === 'cancel' ? `Cancelled ${name}.` : `Retrying ${name}: attempt ${result.data.attempt} queued.`);
      } else if (result.status !== 429) {
        setActionError(`Could not ${verb} ${name}. ${describeProblem(result.problem)}`);
      }
    },
    [sync, announce],
  );
  const onCancel = useCallback((task: Task) => void act(task, 'cancel'), [act]);
  const onRetry = useCallback((task: Task) => void act(task, 'retry'), [act]);
  const onOpen = useCallback((taskId: string) => setSelected(taskId), []);
  const onSubmit = useCallback(
    async (body: SubmitBody): Promise<Result<Task>> => {
      const result = await sync.submit(body);
      if (result.ok) {
        mine.current.add(result.data.task_id);
        announce(`Queued ${result.data.task_type} task ${shortId(result.data.task_id)}.`);
      }
      return result;
    },
    [sync, announce],
  );

  const limited = limitedS > 0;
  const list = snap.list;
  let empty = 'No tasks yet. Submit one with the form.';
  if (all.length > 0) empty = 'No tasks match these filters.';
  else if (list.state === 'loading' || list.state === 'idle') empty = 'Loading tasks…';
  else if (list.state === 'waiting') empty = 'Rate limited: the task list loads when the countdown ends.';

  const selectedTask = selected ? snap.tasks.byId[selected]?.task : undefined;
  const timelineSource = useMemo(
    () => ({ history: (taskId: string) => sync.api.history(taskId), subscribeEvents: sync.subscribeEvents }),
    [sync],
  );
  const scope = describeScope(identity);

  return (
    <>
      <a className="skip-link" href="#tasks-heading">
        Skip to tasks
      </a>
      <TopBar>
        <StatusBar feed={snap.feed} rate={snap.rate} limitedS={limitedS} />
        {identity.keys && <SessionControls identity={identity} onSignOut={onSignOut} />}
      </TopBar>

      <main className="layout">
        <section className="panel submit-panel">
          {types.state === 'loaded' ? (
            <SubmitForm taskTypes={types.types} onSubmit={onSubmit} limitedS={limitedS} onOpen={onOpen} />
          ) : types.state === 'loading' ? (
            <p>Loading task types…</p>
          ) : (
            <div role="alert" className="form-errors">
              <p>Could not load the task types. {describeProblem(types.problem)}</p>
              <button type="button" onClick={loadTypes}>
                Try again
              </button>
            </div>
          )}
        </section>

        <div className="main-column">
          <Overview stats={stats} />

          <section className="panel tasks-panel" aria-labelledby="tasks-heading">
            <div className="panel-heading">
              <h2 id="tasks-heading" tabIndex={-1}>
                Tasks
              </h2>
              {scope && (
                <p className="scope" data-testid="scope">
                  <Icon name="key" /> {scope}
                </p>
              )}
            </div>
            {list.state === 'error' && (
              <div role="alert" className="form-errors">
                <p>Could not load the task list. {describeProblem(list.problem)}</p>
                <button type="button" onClick={() => sync.retryList()} disabled={limited}>
                  Try again
                </button>
              </div>
            )}
            {actionError && (
              <div role="alert" className="form-errors dismissible">
                <p>{actionError}</p>
                <button type="button" className="small" onClick={() => setActionError(null)}>
                  Dismiss
                </button>
              </div>
            )}
            <TaskTable
              tasks={shown}
              total={all.length}
              counts={counts}
              taskTypes={typeNames}
              status={status}
              taskType={taskType}
              onStatus={setStatus}
              onTaskType={setTaskType}
              busy={busy}
              actionsDisabled={limited}
              empty={empty}
              onOpen={onOpen}
              onCancel={onCancel}
              onRetry={onRetry}
              showOwner={showsOwners(identity)}
            />
          </section>
        </div>
      </main>

      <TaskDetail
        source={timelineSource}
        taskId={selected}
        task={selectedTask}
        onClose={() => setSelected(null)}
        onCancel={onCancel}
        onRetry={onRetry}
        busy={selected !== null && busy.has(selected)}
        actionsDisabled={limited}
      />

      <div className="sr-only" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">
        {announcement}
      </div>
    </>
  );
}
