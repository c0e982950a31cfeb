import type { TaskStatus } from '../lib/types';

const GLYPH: Record<TaskStatus, string> = {
  queued: '○',
  processing: '◔',
  completed: '✓',
  failed: '✕',
  cancelled: '⊘',
};

/** The status as text with a shape, colour only on top. */
export function StatusBadge({ status }: { status: TaskStatus }) {
  return (
    <span className={`badge badge-${status}`} data-status={status}>
      <span className="badge-glyph" aria-hidden="true">
        {GLYPH[status] ?? '•'}
      </span>
      {status}
    </span>
  );
}
