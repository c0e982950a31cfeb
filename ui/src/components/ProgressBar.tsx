import { formatEta } from '../lib/format';
import type { Task } from '../lib/types';

/** A progress bar with its number and the time left; an ARIA progressbar. */
export function ProgressBar({ task, label }: { task: Task; label: string }) {
  const value = Math.max(0, Math.min(100, Math.round(task.progress)));
  const eta = task.status === 'processing' ? formatEta(task.eta_s) : '';
  const text = task.status === 'queued' ? 'waiting' : `${value}%${eta ? ` · ${eta}` : ''}`;
  return (
    <div className={`progress progress-${task.status}`}>
      <div
        className="progress-track"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={value}
        aria-valuetext={text}
      >
        <div className="progress-fill" style={{ width: `${value}%` }} />
      </div>
      <span className="progress-text tabular">{text}</span>
    </div>
  );
}
