import type { TaskStatus } from '../lib/types';
import { Icon } from './Icon';

/** The status as text with a shape, colour only on top. */
export function StatusBadge({ status }: { status: TaskStatus }) {
  return (
    <span className={`badge badge-${status}`} data-status={status}>
      <Icon name={status} className="badge-glyph" />
      {status}
    </span>
  );
}
