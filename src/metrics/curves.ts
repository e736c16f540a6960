/** Curve helpers: growable point storage, the MVTec limited trapezoid, downsampling for plots. */

export interface CurvePoint {
  readonly x: number;
  readonly y: number;
}

/** Appends (x, y, threshold) triples into doubling Float64Arrays. */
export class CurveBuilder {
  private xs: Float64Array = new Float64Array(1024);
  private ys: Float64Array = new Float64Array(1024);
  private thresholds: Float64Array = new Float64Array(1024);
  private length = 0;

  push(x: number, y: number, threshold: number): void {
    if (this.length === this.xs.length) {
      this.xs = grow(this.xs);
      this.ys = grow(this.ys);
      this.thresholds = grow(this.thresholds);
    }
    this.xs[this.length] = x;
    this.ys[this.length] = y;
    this.thresholds[this.length] = threshold;
    this.length++;
  }

  /** Copies of the points pushed so far, trimmed to length. */
  build(): { xs: Float64Array; ys: Float64Array; thresholds: Float64Array } {
    return {
      xs: this.xs.slice(0, this.length),
      ys: this.ys.slice(0, this.length),
      thresholds: this.thresholds.slice(0, this.length),
    };
  }
}

function grow(values: Float64Array): Float64Array {
  const grown = new Float64Array(values.length * 2);
  grown.set(values);
  return grown;
}

/**
 * Area under a curve given point by point (x nondecreasing), up to x = limit, with the rule
 * of MVTec AD's `trapezoid(x, y, x_max)`: trapezoids between consecutive points with
 * x <= limit (all of them, repeated x values included), then, only when no point lies
 * exactly at the limit, one more trapezoid from the last point below the limit to the limit,
 * its height at the limit interpolated linearly towards the first point beyond it. The limit
 * must lie within the curve's x range.
 */
export class LimitedTrapezoid {
  private area = 0;
  private previousX = NaN;
  private previousY = NaN;
  private started = false;
  private isClosed = false;

  constructor(readonly limit: number) {}

  /** True once a point beyond the limit was pushed: later points change nothing. */
  get closed(): boolean {
    return this.isClosed;
  }

  push(x: number, y: number): void {
    if (this.isClosed) return;
    if (!this.started) {
      if (x > this.limit) throw new RangeError(`integration limit ${this.limit} lies before the curve's first x ${x}`);
      this.started = true;
    } else if (x < this.previousX) {
      throw new RangeError(`curve x values must be nondecreasing, got ${x} after ${this.previousX}`);
    } else if (x <= this.limit) {
      this.area += 0.5 * (y + this.previousY) * (x - this.previousX);
    } else {
      // First point beyond the limit. previousX is the last x <= limit; if it equals the
      // limit the curve has a point there and nothing is added (MVTec adds no correction).
      if (this.previousX !== this.limit) {
        const span = this.limit - this.previousX;
        const yAtLimit = this.previousY + ((y - this.previousY) * span) / (x - this.previousX);
        this.area += 0.5 * (yAtLimit + this.previousY) * span;
      }
      this.isClosed = true;
      return;
    }
    this.previousX = x;
    this.previousY = y;
  }

  /** The area so far; throws if the curve never reached the limit. */
  result(): number {
    if (!this.isClosed && this.previousX !== this.limit) {
      throw new RangeError(`integration limit ${this.limit} lies beyond the curve's last x ${this.previousX}`);
    }
    return this.area;
  }
}

/** {@link LimitedTrapezoid} over whole arrays. */
export function trapezoidUpTo(xs: ArrayLike<number>, ys: ArrayLike<number>, limit: number): number {
  if (xs.length !== ys.length) throw new RangeError(`got ${xs.length} x values but ${ys.length} y values`);
  const trapezoid = new LimitedTrapezoid(limit);
  for (let i = 0; i < xs.length; i++) trapezoid.push(xs[i], ys[i]);
  return trapezoid.result();
}

/**
 * At most `maxPoints` points of a curve (x nondecreasing) for plotting: the first and last
 * points always, and between them the first point past each of maxPoints - 2 evenly spaced
 * marks along the curve's L1 path length, so steep and flat stretches keep detail alike.
 */
export function downsampleCurve(xs: ArrayLike<number>, ys: ArrayLike<number>, maxPoints: number): CurvePoint[] {
  const n = xs.length;
  if (ys.length !== n) throw new RangeError(`got ${n} x values but ${ys.length} y values`);
  if (!Number.isInteger(maxPoints) || maxPoints < 2)
    throw new RangeError(`maxPoints must be an integer >= 2, got ${maxPoints}`);
  for (let i = 1; i < n; i++) {
    if (!(xs[i] >= xs[i - 1])) throw new RangeError(`curve x values must be nondecreasing (index ${i})`);
  }
  const point = (i: number): CurvePoint => ({ x: xs[i], y: ys[i] });
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => point(i));

  let totalLength = 0;
  for (let i = 1; i < n; i++) totalLength += xs[i] - xs[i - 1] + Math.abs(ys[i] - ys[i - 1]);
  const kept: CurvePoint[] = [point(0)];
  const step = totalLength / (maxPoints - 1);
  let mark = 1;
  let travelled = 0;
  for (let i = 1; i < n - 1 && mark <= maxPoints - 2 && step > 0; i++) {
    travelled += xs[i] - xs[i - 1] + Math.abs(ys[i] - ys[i - 1]);
    if (travelled >= mark * step) {
      kept.push(point(i));
      mark = Math.floor(travelled / step) + 1;
    }
  }
  kept.push(point(n - 1));
  return kept;
}
