import { describe, expect, it } from 'vitest';
import {
  finishedData,
  finishedSummary,
  finishedTotals,
  queueData,
  queueSummary,
  runTimeData,
  runTimeSummary,
  runTimeTypes,
  tableRows,
} from './charts';
import { overviewFromStats } from './stats';
import type { Stats } from './types';

const T0 = Date.parse('2026-11-22T08:00:00Z');

const stats: Stats = {
  interval_s: 15,
  counts: { queued: 1, processing: 2, completed: 9, failed: 1, cancelled: 1 },
  intervals: [
    {
      start: new Date(T0 - 15_000).toISOString(),
      finished: { completed: 3, failed: 1, cancelled: 0 },
      queued: 5,
      processing: 3,
      run_time_s: {
        compute_sum: { count: 3, p50: 0.9051, p95: 1.28 },
        unstable_task: { count: 1, p50: 2.56, p95: 2.56 },
      },
    },
    {
      start: new Date(T0).toISOString(),
      finished: { completed: 2, failed: 0, cancelled: 1 },
      queued: null,
      processing: null,
      run_time_s: { unstable_task: { count: 4, p50: 1.8102, p95: 3.6204 } },
    },
  ],
};
const overview = overviewFromStats(stats);

describe('chart data', () => {
  it('finished per interval by outcome, x in seconds', () => {
    expect(finishedData(overview)).toEqual({
      x: [(T0 - 15_000) / 1000, T0 / 1000],
      ys: [
        [3, 2],
        [1, 0],
        [0, 1],
      ],
    });
    expect(finishedTotals(overview)).toEqual({ completed: 5, failed: 1, cancelled: 1 });
    expect(finishedSummary(overview)).toBe('In the last 1 minute: 5 completed, 1 failed, 1 cancelled.');
  });

  it('queue depth and processing, the newest being the counts now', () => {
    expect(queueData(overview).ys).toEqual([
      [5, 1],
      [3, 2],
    ]);
    expect(queueSummary(overview)).toBe(
      'Now 1 queued and 2 processing; at most 5 queued and 3 processing in the last 1 minute.',
    );
  });

  it('run times: types by runs, p50 and p95 per interval, a summary over the window', () => {
    expect(runTimeTypes(overview)).toEqual(['unstable_task', 'compute_sum']);
    expect(runTimeData(overview, 'compute_sum').ys).toEqual([
      [0.9051, null],
      [1.28, null],
    ]);
    expect(runTimeSummary(overview, 'unstable_task')).toBe(
      'unstable_task, the last 1 minute: 5 runs, p50 ≤ 2.6 s, p95 ≤ 3.6 s.',
    );
    expect(runTimeSummary(overview, 'batch_email')).toBe('No batch_email task finished in the last 1 minute.');
  });

  it('table rows: one per interval, values formatted', () => {
    const rows = tableRows(queueData(overview));
    expect(rows.map((r) => r.values)).toEqual([
      ['5', '3'],
      ['1', '2'],
    ]);
    expect(rows[0]!.key).toBe((T0 - 15_000) / 1000);
    expect(rows[0]!.time).toMatch(/\d/);
    expect(tableRows(runTimeData(overview, 'compute_sum'), (v) => (v === null ? 'none' : `${v}s`))[1]!.values).toEqual([
      'none',
      'none',
    ]);
  });
});
