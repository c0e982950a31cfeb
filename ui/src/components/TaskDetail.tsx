import { useEffect, useRef } from 'react';
import { formatFullTime, shortId } from '../lib/format';
import type { Task } from '../lib/types';
import { ProgressBar } from './ProgressBar';
import { StatusBadge } from './StatusBadge';
import { Duration, Priority, TaskActionButtons } from './TaskTable';
import { TaskTimeline, type TimelineSource } from './TaskTimeline';

interface Props {
  /** Where the timeline comes from. */
  source: TimelineSource;
  taskId: string | null;
  task: Task | undefined;
  onClose: () => void;
  onCancel: (task: Task) => void;
  onRetry: (task: Task) => void;
  busy: boolean;
  actionsDisabled: boolean;
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** The task's parameters, result or error, times and timeline, in a modal dialog (Esc closes). */
export function TaskDetail({ source, taskId, task, onClose, onCancel, onRetry, busy, actionsDisabled }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const open = taskId !== null;

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);

  return (
    <dialog
      ref={ref}
      className="detail"
      aria-labelledby="detail-heading"
      onClose={onClose}
      onClick={(e) => {
        if (e.target === ref.current) onClose(); // a click on the backdrop
      }}
    >
      {open && (
        <div className="detail-body">
          <header className="detail-header">
            <h2 id="detail-heading">
              {task ? task.task_type : 'Task'} <span className="mono muted">{taskId && shortId(taskId)}</span>
            </h2>
            <button type="button" className="small" onClick={onClose} aria-label="Close details">
              Close
            </button>
          </header>
          {!task ? (
            <p>This task is no longer kept by the server (it expired).</p>
          ) : (
            <>
              <div className="detail-status">
                <StatusBadge status={task.status} />
                <ProgressBar task={task} label="Progress" />
                <TaskActionButtons
                  task={task}
                  busy={busy}
                  disabled={actionsDisabled}
                  onCancel={onCancel}
                  onRetry={onRetry}
                />
              </div>
              <dl className="facts">
                <dt>Task id</dt>
                <dd className="mono">{task.task_id}</dd>
                {task.owner !== undefined && (
                  <>
                    <dt>Owner</dt>
                    <dd data-testid="detail-owner">{task.owner}</dd>
                  </>
                )}
                <dt>Priority</dt>
                <dd>
                  <Priority priority={task.priority} />
                </dd>
                <dt>Attempt</dt>
                <dd>{task.attempt}</dd>
                <dt>Created</dt>
                <dd>{formatFullTime(task.created_at)}</dd>
                <dt>Started</dt>
                <dd>{formatFullTime(task.started_at)}</dd>
                <dt>Finished</dt>
                <dd>{formatFullTime(task.finished_at)}</dd>
                <dt>Duration</dt>
                <dd>
                  <Duration task={task} />
                </dd>
              </dl>
              <h3>Parameters</h3>
              <pre className="code" data-testid="detail-parameters">{json(task.parameters)}</pre>
              {task.error && (
                <>
                  <h3>Error</h3>
                  <p className="error-box" data-testid="detail-error">
                    <strong>{task.error.type}</strong>: {task.error.message}
                  </p>
                </>
              )}
              {task.status === 'completed' && (
                <>
                  <h3>Result</h3>
                  <pre className="code" data-testid="detail-result">{json(task.result)}</pre>
                </>
              )}
              <TaskTimeline key={task.task_id} source={source} taskId={task.task_id} />
            </>
          )}
        </div>
      )}
    </dialog>
  );
}
