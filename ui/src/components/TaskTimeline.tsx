import { Fragment, useEffect, useMemo, useState } from 'react';
import { describeProblem, type Result } from '../lib/api';
import { formatClock, formatDuration } from '../lib/format';
import { buildTimeline, mergeEvents, timelineEvent, type Attempt, type Step } from '../lib/timeline';
import type { FeedEvent, Problem, TaskHistory, TimelineEvent } from '../lib/types';
import { Icon, type IconName } from './Icon';
import { StatusBadge } from './StatusBadge';

/** Where a timeline comes from: the history once, then the page's one feed. */
export interface TimelineSource {
  history: (taskId: string) => Promise<Result<TaskHistory>>;
  subscribeEvents: (listener: (event: FeedEvent) => void) => () => void;
}

type Load = { state: 'loading' } | { state: 'loaded' } | { state: 'error'; problem: Problem };

/** The task's events: its history, read when the panel opens, with the feed's merged in live. */
function useTimelineEvents(source: TimelineSource, taskId: string) {
  const [events, setEvents] = useState<TimelineEvent[]>([]);
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    setLoad({ state: 'loading' });
    // Listen first: an event between the read and its answer is then merged, not lost.
    const unsubscribe = source.subscribeEvents((event) => {
      if (event.name === 'resync' || event.task.task_id !== taskId) return;
      const entry = timelineEvent(event, new Date().toISOString());
      setEvents((known) => mergeEvents(known, [entry]));
    });
    void source.history(taskId).then((result) => {
      if (!current) return;
      if (result.ok) {
        setEvents((live) => mergeEvents(result.data.events, live));
        setLoad({ state: 'loaded' });
      } else {
        setLoad({ state: 'error', problem: result.problem });
      }
    });
    return () => {
      current = false;
      unsubscribe();
    };
  }, [source, taskId, attempt]);

  return { events, load, reload: () => setAttempt((n) => n + 1) };
}

/** Every attempt of the task: when it was queued, started and ended, and how. */
export function TaskTimeline({ source, taskId }: { source: TimelineSource; taskId: string }) {
  const { events, load, reload } = useTimelineEvents(source, taskId);
  const timeline = useMemo(() => buildTimeline(events), [events]);
  return (
    <section className="timeline" aria-labelledby="timeline-heading" data-testid="timeline">
      <h3 id="timeline-heading">Timeline</h3>
      {load.state === 'loading' && events.length === 0 && <p className="muted">Loading the timeline…</p>}
      {load.state === 'error' && (
        <div role="alert" className="form-errors dismissible">
          <p>Could not load the timeline. {describeProblem(load.problem)}</p>
          <button type="button" className="small" onClick={reload}>
            Try again
          </button>
        </div>
      )}
      {load.state === 'loaded' && !timeline.complete && (
        <p className="muted">Earlier events of this task are no longer kept.</p>
      )}
      <ol className="attempts">
        {timeline.attempts.map((attempt) => (
          <AttemptItem key={attempt.attempt} attempt={attempt} />
        ))}
      </ol>
    </section>
  );
}

const STEP: Record<Step['kind'], { label: string; icon: IconName }> = {
  queued: { label: 'Queued', icon: 'queued' },
  started: { label: 'Started', icon: 'processing' },
  completed: { label: 'Completed', icon: 'completed' },
  failed: { label: 'Failed', icon: 'failed' },
  cancelled: { label: 'Cancelled', icon: 'cancelled' },
  expired: { label: 'Expired (no longer kept)', icon: 'hourglass' },
};

function AttemptItem({ attempt }: { attempt: Attempt }) {
  const progress = attempt.progress && (
    <li className="step step-progress">
      <Icon name="progress" />
      <span className="step-label">Progress</span>
      <span className="muted">
        {attempt.progress.updates} {attempt.progress.updates === 1 ? 'update' : 'updates'}, up to {attempt.progress.last}%
      </span>
    </li>
  );
  const progressAfter = attempt.steps.findIndex((s) => s.kind === 'started');
  return (
    <li
      className="attempt-item"
      data-testid="timeline-attempt"
      data-attempt={attempt.attempt}
      data-outcome={attempt.outcome ?? 'running'}
    >
      <h4>
        Attempt {attempt.attempt}
        {attempt.outcome ? <StatusBadge status={attempt.outcome} /> : <span className="muted"> under way</span>}
        {attempt.runS !== null && <span className="muted"> after {formatDuration(attempt.runS * 1000)}</span>}
      </h4>
      <ol className="steps">
        {attempt.steps.map((step, i) => (
          <Fragment key={step.id}>
            <li className={`step step-${step.kind}`}>
              <Icon name={STEP[step.kind].icon} />
              <span className="step-label">{STEP[step.kind].label}</span>
              <time dateTime={step.at} className="tabular">
                {formatClock(step.at)}
              </time>
            </li>
            {i === progressAfter && progress}
          </Fragment>
        ))}
        {progressAfter < 0 && progress}
      </ol>
      {attempt.error && (
        <p className="error-box" data-testid="timeline-error">
          <strong>{attempt.error.type}</strong>: {attempt.error.message}
        </p>
      )}
    </li>
  );
}
