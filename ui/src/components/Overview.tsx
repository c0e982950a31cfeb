import { useMemo, useState, useSyncExternalStore } from 'react';
import {
  finishedData,
  finishedSummary,
  lastMinutes,
  queueData,
  queueSummary,
  runTimeData,
  runTimeSummary,
  runTimeTypes,
  seconds,
} from '../lib/charts';
import { describeProblem } from '../lib/api';
import type { Overview as OverviewData } from '../lib/stats';
import type { StatsSync } from '../lib/statsSync';
import { ChartFigure } from './ChartFigure';
import { FINISHED_SERIES, QUEUE_SERIES, RUN_TIME_SERIES, type AxisFormat } from './chartStyle';
import { StatusCounts } from './StatusCounts';

const COUNTS: AxisFormat = { counts: true };
const SECONDS: AxisFormat = { values: (v) => (v === 0 ? '0' : seconds(v)) };

/** Counts by status and charts of the last 15 minutes, service-wide, moving with the feed. */
export function Overview({ stats }: { stats: StatsSync }) {
  const { overview, problem } = useSyncExternalStore(stats.subscribe, stats.getSnapshot);
  return (
    <section className="panel overview-panel" aria-labelledby="overview-heading" data-testid="overview">
      <div className="panel-heading">
        <h2 id="overview-heading">Overview</h2>
        <p className="muted">
          Whole service{overview ? `, ${lastMinutes(overview)}` : ''}; live.
        </p>
      </div>
      {problem && (
        <p className="form-errors" role="status">
          Could not read the figures{overview ? ' (showing the last ones read)' : ''}. {describeProblem(problem)}
        </p>
      )}
      {overview ? <OverviewFigures overview={overview} /> : !problem && <p className="muted">Loading the figures…</p>}
    </section>
  );
}

function OverviewFigures({ overview }: { overview: OverviewData }) {
  const finished = useMemo(() => finishedData(overview), [overview]);
  const queue = useMemo(() => queueData(overview), [overview]);
  return (
    <>
      <StatusCounts counts={overview.counts} />
      <div className="charts">
        <ChartFigure
          id="chart-finished"
          title="Tasks finished"
          summary={finishedSummary(overview)}
          series={FINISHED_SERIES}
          data={finished}
          format={COUNTS}
        />
        <ChartFigure
          id="chart-queue"
          title="Queue depth and processing"
          summary={queueSummary(overview)}
          series={QUEUE_SERIES}
          data={queue}
          format={COUNTS}
        />
        <RunTimeChart overview={overview} />
      </div>
    </>
  );
}

/** Run time p50 and p95 of one task type (the one with most runs, or the one chosen). */
function RunTimeChart({ overview }: { overview: OverviewData }) {
  const types = useMemo(() => runTimeTypes(overview), [overview]);
  const [chosen, setChosen] = useState<string | null>(null);
  const type = chosen !== null && types.includes(chosen) ? chosen : (types[0] ?? null);
  const data = useMemo(() => runTimeData(overview, type ?? ''), [overview, type]);
  const controls =
    types.length > 1 ? (
      <div className="filter chart-control">
        <label htmlFor="run-time-type">Run times of</label>
        <select id="run-time-type" value={type ?? ''} onChange={(e) => setChosen(e.target.value)}>
          {types.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </div>
    ) : null;
  return (
    <ChartFigure
      id="chart-run-time"
      title={type ? `Run time: ${type}` : 'Run time'}
      summary={type ? runTimeSummary(overview, type) : `No task finished in ${lastMinutes(overview)}.`}
      series={RUN_TIME_SERIES}
      data={data}
      format={SECONDS}
      formatValue={seconds}
      controls={controls}
    />
  );
}
