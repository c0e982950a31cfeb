/** Formatting of ids, times and durations for the table and the detail panel. */
import { timeKey } from './tasks';
import type { Task } from './types';

export const shortId = (taskId: string): string => taskId.slice(0, 8);

/** "850 ms", "4.2 s", "12 s", "3 min 5 s", "2 h 4 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const totalS = Math.round(s);
  const m = Math.floor(totalS / 60);
  if (m < 60) return `${m} min ${totalS % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const ms = (iso: string) => timeKey(iso) / 1000;

/** How long the task ran (or has been running, given `now`); null if it never started. */
export function taskDurationMs(task: Task, now: number): number | null {
  if (!task.started_at) return null;
  const end = task.finished_at ? ms(task.finished_at) : task.status === 'processing' ? now : null;
  return end === null ? null : Math.max(0, end - ms(task.started_at));
}

/** Local time of day, with the date when it is not today. */
export function formatTime(iso: string, now: number): string {
  const date = new Date(ms(iso));
  if (Number.isNaN(date.getTime())) return iso;
  const time = date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (date.toDateString() === new Date(now).toDateString()) return time;
  return `${date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${time}`;
}

export function formatFullTime(iso: string | null): string {
  if (!iso) return '—';
  const date = new Date(ms(iso));
  return Number.isNaN(date.getTime()) ? iso : `${date.toLocaleString()} (${iso})`;
}

export function formatEta(etaS: number | null): string {
  if (etaS === null) return '';
  return etaS < 1 ? '<1 s left' : `~${formatDuration(etaS * 1000)} left`;
}

/** Seconds left until `until`, rounded up; 0 when past. */
export function secondsUntil(until: number | null, now: number): number {
  return until === null ? 0 : Math.max(0, Math.ceil((until - now) / 1000));
}

/** Local time of day to the tenth of a second, for a timeline: "14:03:58.2". */
export function formatClock(iso: string): string {
  const date = new Date(ms(iso));
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    fractionalSecondDigits: 1,
    hour12: false,
  });
}
