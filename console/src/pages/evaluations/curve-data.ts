export interface CurvePoint {
  x: number;
  y: number;
}

/** uPlot's columns: the x values, then one y column per series (null where a series has no point). */
export type CurveColumns = [number[], ...Array<Array<number | null>>];

/**
 * The columns for one curve and, with `diagonal`, the chance line y = x from 0 to 1. Its ends are
 * added as x values where the curve has none there (null in the curve's column, so not drawn).
 */
export function curvePlotData(points: readonly CurvePoint[], diagonal: boolean): CurveColumns {
  const xs = points.map((point) => point.x);
  const ys: Array<number | null> = points.map((point) => point.y);
  if (!diagonal) return [xs, ys];
  if (xs.length === 0 || (xs[0] as number) > 0) {
    xs.unshift(0);
    ys.unshift(null);
  }
  if ((xs[xs.length - 1] as number) < 1) {
    xs.push(1);
    ys.push(null);
  }
  return [xs, ys, xs.slice()];
}
