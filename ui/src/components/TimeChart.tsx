import { useEffect, useMemo, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useColorScheme } from '../hooks';
import type { ChartData } from '../lib/charts';
import { CHART_HEIGHT, chartOptions, type AxisFormat, type SeriesStyle } from './chartStyle';

interface Props {
  series: readonly SeriesStyle[];
  data: ChartData;
  format: AxisFormat;
  /** What the chart shows, for assistive technology (the figure has the details). */
  label: string;
}

const sum = (values: ArrayLike<number | null | undefined>) => {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i] ?? 0;
  return Math.round(total * 1000) / 1000;
};

/**
 * A uPlot time-series chart: made once per set of series (and colour scheme), then given new
 * data as it comes, and its width kept to its box's. The figures it holds are on the box as
 * `data-sums` (each series' total), for tests.
 */
export function TimeChart({ series, data, format, label }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const scheme = useColorScheme();
  const aligned = useMemo((): uPlot.AlignedData => [data.x, ...data.ys], [data]);
  const latest = useRef(aligned);
  latest.current = aligned;

  const expose = (u: uPlot) => {
    if (box.current) box.current.dataset.sums = u.data.slice(1).map(sum).join(',');
  };

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = () => Math.max(120, Math.floor(el.clientWidth) || 300);
    const u = new uPlot(chartOptions(series, width(), format), latest.current, el);
    plot.current = u;
    expose(u);
    const resize = new ResizeObserver(() => u.setSize({ width: width(), height: CHART_HEIGHT }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // `format` and `series` are module constants or memoized by the caller
  }, [series, format, scheme]);

  useEffect(() => {
    const u = plot.current;
    if (!u || u.data === aligned) return;
    u.setData(aligned);
    expose(u);
  }, [aligned]);

  return <div ref={box} className="time-chart" role="img" aria-label={label} />;
}
