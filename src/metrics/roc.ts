/**
 * ROC curve and tie-aware AUROC. All items with one score form a single threshold step,
 * so the area is the Mann-Whitney U statistic over P·N (ties count one half), the same
 * value as sklearn's roc_auc_score.
 */
import { CurveBuilder } from './curves';
import { maskPositivePixels } from './positive-pixels';
import { type ScoreGroupBatch, type ScoreGroupSink, groupItemScores, scanPixelScoreGroups } from './score-groups';
import { assertPixelInputs } from './validation';

export interface RocCurve {
  /** Starts at (0, 0) with threshold +Infinity, then one point per distinct score, descending. */
  readonly fpr: Float64Array;
  readonly tpr: Float64Array;
  /** Point i is the rate when predicting positive for score >= thresholds[i]. */
  readonly thresholds: Float64Array;
}

export class RocAccumulator implements ScoreGroupSink {
  private negativesAbove = 0;
  private positivesAbove = 0;
  /** 2·U accumulated in integers: exact while below 2^53. */
  private doubledU = 0;
  private readonly curve: CurveBuilder | null;

  constructor(
    readonly totalPositives: number,
    readonly totalNegatives: number,
    recordCurve = false,
  ) {
    if (totalPositives === 0 || totalNegatives === 0) {
      throw new RangeError(`ROC needs both classes, got ${totalPositives} positives and ${totalNegatives} negatives`);
    }
    this.curve = recordCurve ? new CurveBuilder() : null;
    this.curve?.push(0, 0, Infinity);
  }

  add(batch: ScoreGroupBatch): void {
    const { negatives, positives, scores } = batch;
    const { curve, totalNegatives, totalPositives } = this;
    let negativesAbove = this.negativesAbove;
    let positivesAbove = this.positivesAbove;
    let doubledU = this.doubledU;
    for (let g = 0; g < batch.length; g++) {
      const groupNegatives = negatives[g];
      const groupPositives = positives[g];
      // Each negative of the group loses to every positive above it and ties with the
      // group's own positives (worth one half).
      doubledU += groupNegatives * (2 * positivesAbove + groupPositives);
      negativesAbove += groupNegatives;
      positivesAbove += groupPositives;
      if (curve !== null) curve.push(negativesAbove / totalNegatives, positivesAbove / totalPositives, scores[g]);
    }
    this.negativesAbove = negativesAbove;
    this.positivesAbove = positivesAbove;
    this.doubledU = doubledU;
  }

  auroc(): number {
    this.assertComplete();
    return this.doubledU / (2 * this.totalPositives * this.totalNegatives);
  }

  curvePoints(): RocCurve {
    if (this.curve === null) throw new Error('this accumulator was created without recordCurve');
    this.assertComplete();
    const { xs, ys, thresholds } = this.curve.build();
    return { fpr: xs, tpr: ys, thresholds };
  }

  private assertComplete(): void {
    if (this.negativesAbove !== this.totalNegatives || this.positivesAbove !== this.totalPositives) {
      throw new Error(
        `saw ${this.positivesAbove}/${this.totalPositives} positives and ` +
          `${this.negativesAbove}/${this.totalNegatives} negatives; totals and data disagree`,
      );
    }
  }
}

function countLabels(labels: Uint8Array): { positives: number; negatives: number } {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0) positives++;
  return { positives, negatives: labels.length - positives };
}

function itemRoc(scores: Float32Array | Float64Array, labels: Uint8Array, recordCurve: boolean): RocAccumulator {
  const { positives, negatives } = countLabels(labels);
  const accumulator = new RocAccumulator(positives, negatives, recordCurve);
  accumulator.add(groupItemScores(scores, labels));
  return accumulator;
}

/** ROC of per-item scores (labels: nonzero = anomalous). */
export function rocCurve(scores: Float32Array | Float64Array, labels: Uint8Array): RocCurve {
  return itemRoc(scores, labels, true).curvePoints();
}

/** Image-level AUROC (labels: nonzero = anomalous); RangeError when only one class occurs. */
export function imageAuroc(scores: Float32Array | Float64Array, labels: Uint8Array): number {
  return itemRoc(scores, labels, false).auroc();
}

function pixelRoc(maps: readonly Float32Array[], masks: readonly Uint8Array[], recordCurve: boolean): RocAccumulator {
  assertPixelInputs(maps, masks);
  const positives = maskPositivePixels(maps, masks);
  const accumulator = new RocAccumulator(positives.count, positives.negativePixels, recordCurve);
  scanPixelScoreGroups(maps, positives, accumulator, { mergeNegativeRuns: !recordCurve });
  return accumulator;
}

/** Pixel-level AUROC over all pixels of all maps (masks: nonzero = defect pixel). */
export function pixelAuroc(maps: readonly Float32Array[], masks: readonly Uint8Array[]): number {
  return pixelRoc(maps, masks, false).auroc();
}

/**
 * Pixel-level ROC curve, one point per distinct pixel score: up to 24 bytes per distinct
 * score, so downsample it ({@link downsampleCurve}) before storing or plotting.
 */
export function pixelRocCurve(maps: readonly Float32Array[], masks: readonly Uint8Array[]): RocCurve {
  return pixelRoc(maps, masks, true).curvePoints();
}
