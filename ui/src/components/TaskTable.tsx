import { memo } from 'react';
import { useNow } from '../hooks';
import { formatDuration, formatFullTime, formatTime, shortId, taskDurationMs } from '../lib/format';
import { STATUSES, type Priority as PriorityName, type Task, type TaskStatus } from '../lib/types';
import { Icon } from './Icon';
import { ProgressBar } from './ProgressBar';
import { StatusBadge } from './StatusBadge';

export interface TaskActions {
  onOpen: (taskId: string) => void;
  onCancel: (task: Task) => void;
  onRetry: (task: Task) => void;
}

interface Props extends TaskActions {
  tasks: Task[];
  total: number;
  counts: Record<TaskStatus, number>;
  taskTypes: string[];
  status: TaskStatus | '';
  taskType: string;
  onStatus: (status: TaskStatus | '') => void;
  onTaskType: (taskType: string) => void;
  /** Ids with an action under way. */
  busy: ReadonlySet<string>;
  actionsDisabled: boolean;
  empty: string;
  /** Whether to show whose each task is (an admin's view, with API keys on). */
  showOwner: boolean;
}

export const canCancel = (task: Task) => task.status === 'queued' || task.status === 'processing';
export const canRetry = (task: Task) => task.status === 'failed' || task.status === 'cancelled';

export const TaskTable = memo(function TaskTable(props: Props) {
  const { tasks, total, counts, taskTypes, status, taskType, onStatus, onTaskType, empty, showOwner } = props;
  return (
    <>
      <div className="filters">
        <div className="filter">
          <label htmlFor="filter-status">Status</label>
          <select id="filter-status" value={status} onChange={(e) => onStatus(e.target.value as TaskStatus | '')}>
            <option value="">all ({total})</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s} ({counts[s]})
              </option>
            ))}
          </select>
        </div>
        <div className="filter">
          <label htmlFor="filter-type">Type</label>
          <select id="filter-type" value={taskType} onChange={(e) => onTaskType(e.target.value)}>
            <option value="">all types</option>
            {taskTypes.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <p className="filter-count">
          {tasks.length === total ? `${total} ${total === 1 ? 'task' : 'tasks'}` : `${tasks.length} of ${total} tasks`}
        </p>
      </div>

      {tasks.length === 0 ? (
        <p className="empty">{empty}</p>
      ) : (
        <div className="table-wrap">
        <table className="tasks" role="table">
          <caption className="sr-only">Tasks, newest first</caption>
          <thead role="rowgroup">
            <tr role="row">
              <th scope="col" role="columnheader">Task</th>
              <th scope="col" role="columnheader">Status</th>
              <th scope="col" role="columnheader" className="col-progress">Progress</th>
              {showOwner && <th scope="col" role="columnheader">Owner</th>}
              <th scope="col" role="columnheader">Priority</th>
              <th scope="col" role="columnheader">Created</th>
              <th scope="col" role="columnheader">Duration</th>
              <th scope="col" role="columnheader"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody role="rowgroup">
            {tasks.map((task) => (
              <TaskRow
                key={task.task_id}
                task={task}
                busy={props.busy.has(task.task_id)}
                actionsDisabled={props.actionsDisabled}
                showOwner={showOwner}
                onOpen={props.onOpen}
                onCancel={props.onCancel}
                onRetry={props.onRetry}
              />
            ))}
          </tbody>
        </table>
        </div>
      )}
    </>
  );
});

interface RowProps extends TaskActions {
  task: Task;
  busy: boolean;
  actionsDisabled: boolean;
  showOwner: boolean;
}

const TaskRow = memo(function TaskRow({ task, busy, actionsDisabled, showOwner, onOpen, onCancel, onRetry }: RowProps) {
  const name = `${task.task_type} ${shortId(task.task_id)}`;
  return (
    <tr role="row" data-task-id={task.task_id} data-status={task.status}>
      <td role="cell" data-label="Task">
        <div>
          <button
            type="button"
            className="link task-name"
            onClick={() => onOpen(task.task_id)}
            aria-label={`Details of ${task.task_type} task ${shortId(task.task_id)}`}
          >
            {breakable(task.task_type)}
          </button>
          <span className="mono muted task-id">{shortId(task.task_id)}</span>
        </div>
      </td>
      <td role="cell" data-label="Status">
        <div>
          <StatusBadge status={task.status} />
          {task.attempt > 1 && <span className="attempt">attempt {task.attempt}</span>}
        </div>
      </td>
      <td role="cell" data-label="Progress" className="col-progress">
        <ProgressBar task={task} label={`Progress of ${name}`} />
      </td>
      {showOwner && (
        <td role="cell" data-label="Owner" className="owner">
          {task.owner ?? <span className="muted">—</span>}
        </td>
      )}
      <td role="cell" data-label="Priority">
        <Priority priority={task.priority} />
      </td>
      <td role="cell" data-label="Created">
        <time dateTime={task.created_at} title={formatFullTime(task.created_at)}>
          {formatTime(task.created_at, Date.now())}
        </time>
      </td>
      <td role="cell" data-label="Duration" className="tabular">
        <Duration task={task} />
      </td>
      <td role="cell" data-label="Actions" className="actions">
        <TaskActionButtons
          task={task}
          busy={busy}
          disabled={actionsDisabled}
          onCancel={onCancel}
          onRetry={onRetry}
        />
      </td>
    </tr>
  );
});

/** The priority as a word, with an arrow for high and low. */
export function Priority({ priority }: { priority: PriorityName }) {
  return (
    <span className={`priority priority-${priority}`}>
      {priority === 'high' && <Icon name="up" />}
      {priority === 'low' && <Icon name="down" />}
      {priority}
    </span>
  );
}

/** How long the task ran; ticks while it is processing. */
export function Duration({ task }: { task: Task }) {
  const now = useNow(task.status === 'processing', 500);
  const ms = taskDurationMs(task, now);
  if (ms === null) return <span className="muted">—</span>;
  return <span>{formatDuration(ms)}</span>;
}

export function TaskActionButtons({
  task,
  busy,
  disabled,
  onCancel,
  onRetry,
}: {
  task: Task;
  busy: boolean;
  disabled: boolean;
  onCancel: (task: Task) => void;
  onRetry: (task: Task) => void;
}) {
  const name = `${task.task_type} task ${shortId(task.task_id)}`;
  if (canCancel(task)) {
    return (
      <button
        type="button"
        className="small danger"
        disabled={busy || disabled}
        onClick={() => onCancel(task)}
        aria-label={`Cancel ${name}`}
      >
        {busy ? 'Cancelling…' : 'Cancel'}
      </button>
    );
  }
  if (canRetry(task)) {
    return (
      <button
        type="button"
        className="small"
        disabled={busy || disabled}
        onClick={() => onRetry(task)}
        aria-label={`Retry ${name}`}
      >
        {busy ? 'Retrying…' : 'Retry'}
      </button>
    );
  }
  return null;
}

/** A type name with line-break opportunities after its underscores. */
function breakable(name: string) {
  const parts = name.split('_');
  return parts.map((part, i) => (
    <span key={i}>
      {part}
      {i < parts.length - 1 && (
        <>
          _<wbr />
        </>
      )}
    </span>
  ));
}
