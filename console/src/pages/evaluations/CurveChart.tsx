import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { curvePlotData, type CurvePoint } from './curve-data';

const CURVE_COLOUR = '#2459d6';
const DIAGONAL_COLOUR = '#98a2b3';
const CHART_HEIGHT = 280;

interface CurveChartProps {
  title: string;
  points: readonly CurvePoint[];
  xLabel: string;
  yLabel: string;
  /** Upper end of the x axis (1 for ROC, the AUPRO limit for PRO). */
  xMax: number;
  /** Also draw the chance line y = x. */
  diagonal?: boolean;
  testId?: string;
}

function axisValue(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : value.toFixed(3);
}

/** A curve with y in [0, 1], drawn by uPlot into a container that follows its width. */
export function CurveChart({ title, points, xLabel, yLabel, xMax, diagonal = false, testId }: CurveChartProps) {
  const containerRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const container = containerRef.current;
    if (!container || points.length === 0) return;
    const series: uPlot.Series[] = [
      { label: xLabel, value: (_plot, value) => axisValue(value) },
      { label: yLabel, stroke: CURVE_COLOUR, width: 2, value: (_plot, value) => axisValue(value) },
    ];
    if (diagonal) series.push({ label: 'Chance', stroke: DIAGONAL_COLOUR, width: 1, dash: [6, 6], value: () => '' });
    const plot = new uPlot(
      {
        width: container.clientWidth,
        height: CHART_HEIGHT,
        scales: { x: { time: false, range: [0, xMax] }, y: { range: [0, 1] } },
        axes: [{ label: xLabel }, { label: yLabel }],
        series,
        cursor: { drag: { x: false, y: false } },
      },
      curvePlotData(points, diagonal),
      container,
    );
    let width = container.clientWidth;
    const observer = new ResizeObserver(() => {
      if (container.clientWidth === width) return;
      width = container.clientWidth;
      plot.setSize({ width, height: CHART_HEIGHT });
    });
    observer.observe(container);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [points, xLabel, yLabel, xMax, diagonal]);

  return (
    <figure className="evaluations-curve" data-testid={testId} data-points={points.length}>
      <figcaption>{title}</figcaption>
      {points.length === 0 ? <p className="muted">No points.</p> : null}
      <div ref={containerRef} className="evaluations-curve-plot" />
    </figure>
  );
}
