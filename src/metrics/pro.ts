/**
 * Per-region overlap (PRO) curve and its normalised area (AUPRO), following the MVTec AD
 * evaluation code (`compute_pro` / `trapezoid` in generic_util.py):
 *  - ground-truth regions are the 8-connected components of each mask;
 *  - false-positive candidates are all pixels outside every region, in every image (good
 *    images included); FPR = false positives above the threshold / their total;
 *  - PRO = sum over region pixels above the threshold of 1 / |region|, over the region count;
 *  - one point per distinct score, plus (0, 0) first and (1, 1) last;
 *  - AUPRO = trapezoid area up to FPR = limit (see LimitedTrapezoid) / limit.
 * Deliberate difference: MVTec casts the cumulative false-positive counts to float32 before
 * dividing; here FPR is the exact float64 quotient (values differ by ~1e-8 at most).
 */
import { CurveBuilder, LimitedTrapezoid } from './curves';
import { regionPositivePixels } from './positive-pixels';
import { type ScoreGroupBatch, type ScoreGroupSink, scanPixelScoreGroups } from './score-groups';
import { assertImageSize, assertPixelInputs } from './validation';

export const DEFAULT_PRO_LIMIT = 0.3;

export interface ProCurve {
  /** (0, 0) with threshold +Infinity, one point per distinct score, (1, 1) with -Infinity. */
  readonly fpr: Float64Array;
  readonly pro: Float64Array;
  readonly thresholds: Float64Array;
}

export function assertProLimit(limit: number): void {
  if (!(limit > 0 && limit <= 1)) throw new RangeError(`PRO integration limit must be in (0, 1], got ${limit}`);
}

export class ProAccumulator implements ScoreGroupSink {
  private falsePositives = 0;
  private overlapSum = 0;
  private finished = false;
  private readonly trapezoid: LimitedTrapezoid;
  private readonly curve: CurveBuilder | null;

  constructor(
    readonly totalNegatives: number,
    readonly regionCount: number,
    readonly limit: number = DEFAULT_PRO_LIMIT,
    recordCurve = false,
  ) {
    assertProLimit(limit);
    if (regionCount === 0) throw new RangeError('PRO needs at least one ground-truth region; every mask is empty');
    if (totalNegatives === 0) throw new RangeError('PRO needs pixels outside the ground-truth regions; there are none');
    this.trapezoid = new LimitedTrapezoid(limit);
    this.curve = recordCurve ? new CurveBuilder() : null;
    this.push(0, 0, Infinity);
  }

  add(batch: ScoreGroupBatch): void {
    if (this.finished) throw new Error('PRO accumulator already finished');
    const { negatives, positiveWeights, scores } = batch;
    const { totalNegatives, regionCount, trapezoid, curve } = this;
    let falsePositives = this.falsePositives;
    let overlapSum = this.overlapSum;
    let g = 0;
    for (; g < batch.length && (curve !== null || !trapezoid.closed); g++) {
      falsePositives += negatives[g];
      overlapSum += positiveWeights[g];
      // The float sum of 1/|region| can overshoot 1 by rounding; MVTec clips it too.
      const fpr = falsePositives / totalNegatives;
      const pro = Math.min(overlapSum / regionCount, 1);
      trapezoid.push(fpr, pro);
      curve?.push(fpr, pro, scores[g]);
    }
    // Past the integration limit only the false-positive total is still checked.
    for (; g < batch.length; g++) falsePositives += negatives[g];
    this.falsePositives = falsePositives;
    this.overlapSum = overlapSum;
  }

  aupro(): number {
    this.finish();
    return this.trapezoid.result() / this.limit;
  }

  curvePoints(): ProCurve {
    if (this.curve === null) throw new Error('this accumulator was created without recordCurve');
    this.finish();
    const { xs, ys, thresholds } = this.curve.build();
    return { fpr: xs, pro: ys, thresholds };
  }

  private finish(): void {
    if (this.finished) return;
    if (this.falsePositives !== this.totalNegatives) {
      throw new Error(`saw ${this.falsePositives} of ${this.totalNegatives} negative pixels; totals and data disagree`);
    }
    this.push(1, 1, -Infinity);
    this.finished = true;
  }

  private push(fpr: number, pro: number, threshold: number): void {
    this.trapezoid.push(fpr, pro);
    this.curve?.push(fpr, pro, threshold);
  }
}

function pixelPro(
  maps: readonly Float32Array[],
  masks: readonly Uint8Array[],
  width: number,
  height: number,
  limit: number,
  recordCurve: boolean,
): ProAccumulator {
  assertPixelInputs(maps, masks);
  assertImageSize(maps, width, height);
  assertProLimit(limit);
  const positives = regionPositivePixels(maps, masks, width, height);
  const accumulator = new ProAccumulator(positives.negativePixels, positives.regionCount, limit, recordCurve);
  scanPixelScoreGroups(maps, positives, accumulator, { mergeNegativeRuns: !recordCurve });
  return accumulator;
}

/** AUPRO up to FPR = limit, normalised by the limit (MVTec protocol; default limit 0.3). */
export function aupro(
  maps: readonly Float32Array[],
  masks: readonly Uint8Array[],
  width: number,
  height: number,
  limit: number = DEFAULT_PRO_LIMIT,
): number {
  return pixelPro(maps, masks, width, height, limit, false).aupro();
}

/** The full PRO curve (24 bytes per distinct pixel score; downsample before plotting). */
export function proCurve(
  maps: readonly Float32Array[],
  masks: readonly Uint8Array[],
  width: number,
  height: number,
): ProCurve {
  return pixelPro(maps, masks, width, height, DEFAULT_PRO_LIMIT, true).curvePoints();
}
