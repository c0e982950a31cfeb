import { STATUSES, type TaskStatus } from '../lib/types';
import { Icon } from './Icon';

/** How many tasks are in each status now. */
export function StatusCounts({ counts }: { counts: Record<TaskStatus, number> }) {
  return (
    <dl className="counts" data-testid="counts">
      {STATUSES.map((status) => (
        <div key={status} className={`count count-${status}`} data-testid={`count-${status}`} data-count={counts[status]}>
          <dt>
            <Icon name={status} /> {status}
          </dt>
          <dd className="tabular">{counts[status]}</dd>
        </div>
      ))}
    </dl>
  );
}
