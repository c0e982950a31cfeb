import type { ReactNode } from 'react';
import { tableRows, type ChartData } from '../lib/charts';
import type { AxisFormat, SeriesStyle } from './chartStyle';
import { TimeChart } from './TimeChart';

interface Props {
  /** Id prefix, and the figure's test id. */
  id: string;
  title: string;
  /** One sentence saying what the chart shows: its caption, and its text alternative. */
  summary: string;
  series: readonly SeriesStyle[];
  data: ChartData;
  format: AxisFormat;
  /** How the data table writes a value. */
  formatValue?: (value: number | null) => string;
  /** Controls that choose what the chart shows. */
  controls?: ReactNode;
}

/**
 * A chart with its text alternatives: a caption with the title and a summary, a legend that
 * shows each series' line and marker with its name, and the figures as a table.
 */
export function ChartFigure({ id, title, summary, series, data, format, formatValue, controls }: Props) {
  const rows = tableRows(data, formatValue);
  return (
    <figure className="chart" aria-labelledby={`${id}-title`} data-testid={id}>
      <figcaption>
        <h3 id={`${id}-title`}>{title}</h3>
        <p className="chart-summary" data-testid={`${id}-summary`}>
          {summary}
        </p>
      </figcaption>
      <ChartLegend series={series} />
      <TimeChart series={series} data={data} format={format} label={`${title}. ${summary}`} />
      {controls}
      <details className="chart-data">
        <summary>Data table</summary>
        <div className="chart-table-wrap">
          <table data-testid={`${id}-table`}>
            <caption className="sr-only">{title}, by 15-second interval, oldest first</caption>
            <thead>
              <tr>
                <th scope="col">Interval</th>
                {series.map((s) => (
                  <th scope="col" key={s.label}>
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.key}>
                  <th scope="row">
                    <time dateTime={new Date(row.key * 1000).toISOString()}>{row.time}</time>
                  </th>
                  {row.values.map((value, i) => (
                    <td key={series[i]?.label ?? i}>{value}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

/** Each series' name beside a sample of its line: colour, dash pattern and marker shape. */
export function ChartLegend({ series }: { series: readonly SeriesStyle[] }) {
  return (
    <ul className="chart-legend">
      {series.map((s) => (
        <li key={s.label}>
          <svg width="30" height="12" viewBox="0 0 30 12" aria-hidden="true" focusable="false">
            <line
              x1="1"
              y1="6"
              x2="29"
              y2="6"
              style={{ stroke: `var(${s.color})` }}
              strokeWidth="2"
              strokeDasharray={s.dash.length ? s.dash.join(' ') : undefined}
            />
            <path
              d={markerPath(s.marker)}
              style={{ stroke: `var(${s.color})`, fill: s.marker === 'square' ? 'var(--panel)' : `var(${s.color})` }}
              strokeWidth="1.5"
            />
          </svg>
          {s.label}
        </li>
      ))}
    </ul>
  );
}

/** The marker as SVG path data, centred in the legend's sample. */
function markerPath(shape: SeriesStyle['marker']): string {
  if (shape === 'circle') return 'M18.5 6a3.5 3.5 0 1 1-7 0a3.5 3.5 0 1 1 7 0z';
  if (shape === 'square') return 'M12 3h6v6h-6z';
  return 'M15 2l4 7h-8z';
}

