/**
 * How the overview's series look, and the uPlot options drawing them. Each series differs in
 * three ways, so colour is never the only one: its colour (a custom property of styles.css, so
 * light and dark both work), its line's dash pattern, and the shape of its markers.
 */
import uPlot from 'uplot';

export type Marker = 'circle' | 'square' | 'triangle';

export interface SeriesStyle {
  label: string;
  /** A colour custom property of styles.css, e.g. `--completed`. */
  color: string;
  /** Canvas/SVG dash pattern (empty: solid). */
  dash: readonly number[];
  marker: Marker;
}

export const CHART_HEIGHT = 170;

export function cssColor(property: string, fallback = '#888'): string {
  if (typeof document === 'undefined') return fallback;
  return getComputedStyle(document.documentElement).getPropertyValue(property).trim() || fallback;
}

/** Adds one marker of `shape`, centred on (x, y), `r` its half-size, to `path`. */
export function addMarker(path: Path2D, shape: Marker, x: number, y: number, r: number): void {
  if (shape === 'circle') {
    path.moveTo(x + r, y);
    path.arc(x, y, r, 0, 2 * Math.PI);
  } else if (shape === 'square') {
    const s = r * 0.9;
    path.rect(x - s, y - s, 2 * s, 2 * s);
  } else {
    path.moveTo(x, y - r * 1.15);
    path.lineTo(x + r * 1.1, y + r * 0.8);
    path.lineTo(x - r * 1.1, y + r * 0.8);
    path.closePath();
  }
}

/** A uPlot points builder drawing `shape` at every value above zero. */
function markerPaths(shape: Marker, sizePx: number): uPlot.Series.Points.PathBuilder {
  return (u, seriesIdx, idx0, idx1) => {
    const path = new Path2D();
    const xs = u.data[0];
    const ys = u.data[seriesIdx];
    const r = (sizePx / 2) * uPlot.pxRatio;
    if (ys) {
      for (let i = idx0; i <= idx1; i++) {
        const value = ys[i];
        const xValue = xs[i];
        if (value === null || value === undefined || value <= 0 || xValue === undefined) continue;
        addMarker(path, shape, u.valToPos(xValue, 'x', true), u.valToPos(value, 'y', true), r);
      }
    }
    return { stroke: path, fill: path };
  };
}

/** Whole numbers only on a count axis. */
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];

export interface AxisFormat {
  /** Labels of the y axis. */
  values?: (value: number) => string;
  /** Whether y is a count (whole steps). */
  counts?: boolean;
}

/** An x-axis label: the local time of day, hours and minutes. */
const clockLabel = (seconds: number): string =>
  new Date(seconds * 1000).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });

export function chartOptions(series: readonly SeriesStyle[], width: number, format: AxisFormat): uPlot.Options {
  const text = cssColor('--muted', '#666');
  const grid = cssColor('--border', '#ddd');
  const panel = cssColor('--panel', '#fff');
  const font = '11px system-ui, sans-serif';
  const axis = (extra: uPlot.Axis): uPlot.Axis => ({
    stroke: text,
    font,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1, size: 4 },
    ...extra,
  });
  const formatY = format.values;
  return {
    width,
    height: CHART_HEIGHT,
    legend: { show: false }, // the figure has its own, and a data table
    cursor: { drag: { x: false, y: false }, points: { size: 8 } },
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, Math.max(format.counts ? 4 : 0.01, max * 1.1)] },
    },
    axes: [
      axis({ space: 60, values: (_u: uPlot, splits: number[]) => splits.map(clockLabel) }),
      axis({
        size: 58,
        ...(format.counts ? { incrs: COUNT_STEPS } : {}),
        ...(formatY ? { values: (_u: uPlot, splits: number[]) => splits.map(formatY) } : {}),
      }),
    ],
    series: [
      {},
      ...series.map(
        (s): uPlot.Series => ({
          label: s.label,
          stroke: cssColor(s.color),
          width: 2,
          dash: [...s.dash],
          spanGaps: false,
          points: {
            show: true,
            size: 7,
            width: 1.5,
            stroke: cssColor(s.color),
            fill: s.marker === 'square' ? panel : cssColor(s.color),
            paths: markerPaths(s.marker, 7),
          },
        }),
      ),
    ],
  };
}

export const FINISHED_SERIES: readonly SeriesStyle[] = [
  { label: 'completed', color: '--completed', dash: [], marker: 'circle' },
  { label: 'failed', color: '--failed', dash: [7, 4], marker: 'square' },
  { label: 'cancelled', color: '--cancelled', dash: [2, 3], marker: 'triangle' },
];

export const QUEUE_SERIES: readonly SeriesStyle[] = [
  { label: 'queued', color: '--queued', dash: [7, 4], marker: 'square' },
  { label: 'processing', color: '--processing', dash: [], marker: 'circle' },
];

export const RUN_TIME_SERIES: readonly SeriesStyle[] = [
  { label: 'p50', color: '--processing', dash: [], marker: 'circle' },
  { label: 'p95', color: '--cancelled', dash: [7, 4], marker: 'triangle' },
];
