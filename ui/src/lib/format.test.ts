import { describe, expect, it } from 'vitest';
import { formatClock, formatDuration, formatEta, secondsUntil, shortId, taskDurationMs } from './format';
import type { Task } from './types';

const base: Task = {
  task_id: '4f5adeec-da3b-4255-8338-d5acb80d0b71',
  task_type: 'compute_sum',
  status: 'completed',
  priority: 'normal',
  parameters: {},
  progress: 100,
  eta_s: null,
  result: null,
  error: null,
  attempt: 1,
  created_at: '2026-11-22T07:54:03.356552Z',
  started_at: '2026-11-22T07:54:03.357123Z',
  finished_at: '2026-11-22T07:54:09.363256Z',
};

describe('format', () => {
  it('formats durations', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(4200)).toBe('4.2 s');
    expect(formatDuration(12_400)).toBe('12 s');
    expect(formatDuration(185_000)).toBe('3 min 5 s');
    expect(formatDuration(7_440_000)).toBe('2 h 4 min');
    expect(formatDuration(-1)).toBe('—');
  });

  it('measures a task from start to finish, or to now while it runs', () => {
    expect(taskDurationMs(base, 0)).toBeCloseTo(6006.133, 3);
    const running = { ...base, status: 'processing' as const, finished_at: null };
    expect(taskDurationMs(running, Date.parse('2026-11-22T07:54:05.357Z'))).toBeCloseTo(2000, 0);
    expect(taskDurationMs({ ...base, status: 'queued', started_at: null, finished_at: null }, 0)).toBeNull();
  });

  it('formats ids, eta and countdowns', () => {
    expect(shortId(base.task_id)).toBe('4f5adeec');
    expect(formatEta(null)).toBe('');
    expect(formatEta(0.4)).toBe('<1 s left');
    expect(formatEta(3.25)).toBe('~3.3 s left');
    expect(secondsUntil(10_500, 10_000)).toBe(1);
    expect(secondsUntil(9_000, 10_000)).toBe(0);
    expect(secondsUntil(null, 10_000)).toBe(0);
  });
});

describe('formatClock', () => {
  it('gives the time of day to a tenth of a second, and the input when it is no time', () => {
    const text = formatClock('2026-11-22T07:54:03.356552Z');
    expect(text).toMatch(/\d\d.\d\d.03[.,]3/);
    expect(formatClock('soon')).toBe('soon');
  });
});
