/**
 * What the overview's charts and their text alternatives show, from an `Overview`: one x value
 * per interval (its start, in seconds, as uPlot takes time), a y array per series, a one-line
 * summary for the caption and rows for the data table.
 */
import { formatDuration } from './format';
import { addHistograms, runTimesOf, type Overview } from './stats';
import { OUTCOMES, type Outcome } from './types';

export interface ChartData {
  /** Interval starts, seconds since the epoch. */
  x: number[];
  /** One array per series, as long as `x`; null where there is no value. */
  ys: Array<Array<number | null>>;
}

const xs = (overview: Overview) => overview.intervals.map((i) => i.start / 1000);

export function finishedData(overview: Overview): ChartData {
  return { x: xs(overview), ys: OUTCOMES.map((o) => overview.intervals.map((i) => i.finished[o])) };
}

export function finishedTotals(overview: Overview): Record<Outcome, number> {
  const totals: Record<Outcome, number> = { completed: 0, failed: 0, cancelled: 0 };
  for (const interval of overview.intervals) for (const o of OUTCOMES) totals[o] += interval.finished[o];
  return totals;
}

export function finishedSummary(overview: Overview): string {
  const t = finishedTotals(overview);
  return `In ${lastMinutes(overview)}: ${t.completed} completed, ${t.failed} failed, ${t.cancelled} cancelled.`;
}

export function queueData(overview: Overview): ChartData {
  return {
    x: xs(overview),
    ys: [overview.intervals.map((i) => i.queued), overview.intervals.map((i) => i.processing)],
  };
}

export function queueSummary(overview: Overview): string {
  const peak = (values: Array<number | null>) => Math.max(0, ...values.filter((v): v is number => v !== null));
  const [queued = [], processing = []] = queueData(overview).ys;
  const { counts } = overview;
  return (
    `Now ${counts.queued} queued and ${counts.processing} processing; ` +
    `at most ${peak(queued)} queued and ${peak(processing)} processing in ${lastMinutes(overview)}.`
  );
}

/** Task types with run times in the window, most runs first (then by name). */
export function runTimeTypes(overview: Overview): string[] {
  const totals = new Map<string, number>();
  for (const interval of overview.intervals) {
    for (const [type, counts] of Object.entries(interval.runTimes)) {
      totals.set(type, (totals.get(type) ?? 0) + counts.reduce((a, b) => a + b, 0));
    }
  }
  return [...totals]
    .filter(([, n]) => n > 0)
    .sort(([a, n], [b, m]) => m - n || (a < b ? -1 : 1))
    .map(([type]) => type);
}

/** p50 and p95 (seconds) of one type, interval by interval. */
export function runTimeData(overview: Overview, type: string): ChartData {
  const figures = overview.intervals.map((i) => runTimesOf(i.runTimes[type]));
  return { x: xs(overview), ys: [figures.map((f) => f.p50), figures.map((f) => f.p95)] };
}

/** Runs of one type in the window, and its p50 and p95 over the whole window. */
export function runTimeWindow(overview: Overview, type: string) {
  return runTimesOf(addHistograms(overview.intervals.flatMap((i) => (i.runTimes[type] ? [i.runTimes[type]] : []))));
}

export function runTimeSummary(overview: Overview, type: string): string {
  const { count, p50, p95 } = runTimeWindow(overview, type);
  if (count === 0) return `No ${type} task finished in ${lastMinutes(overview)}.`;
  return (
    `${type}, ${lastMinutes(overview)}: ${count} ${count === 1 ? 'run' : 'runs'}, ` +
    `p50 ≤ ${seconds(p50)}, p95 ≤ ${seconds(p95)}.`
  );
}

/** A run time the way the charts' table and captions say it. */
export const seconds = (s: number | null): string => (s === null ? '—' : formatDuration(s * 1000));

/** "the last 15 minutes": the window the overview covers. */
export function lastMinutes(overview: Overview): string {
  const m = Math.round((overview.intervals.length * overview.intervalMs) / 60_000);
  return `the last ${m} ${m === 1 ? 'minute' : 'minutes'}`;
}

/** Rows of a data table: the interval's local time, then each series' value. */
export function tableRows(data: ChartData, format: (v: number | null) => string = (v) => (v === null ? '—' : String(v))) {
  return data.x.map((x, i) => ({
    key: x,
    time: new Date(x * 1000).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }),
    values: data.ys.map((y) => format(y[i] ?? null)),
  }));
}
