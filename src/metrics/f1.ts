/**
 * Best F1 over all thresholds, predicting positive when score >= threshold, with one
 * candidate threshold per distinct score. F1 = 2·TP / (2·TP + FP + FN) = 2·TP / (TP + FP + P).
 */
import { maskPositivePixels } from './positive-pixels';
import { type ScoreGroupBatch, type ScoreGroupSink, groupItemScores, scanPixelScoreGroups } from './score-groups';
import { assertPixelInputs } from './validation';

export interface F1Max {
  readonly f1: number;
  /** The highest score threshold that reaches the maximum F1. */
  readonly threshold: number;
}

export class F1Accumulator implements ScoreGroupSink {
  private truePositives = 0;
  private predictedPositives = 0;
  private bestF1 = -1;
  private bestThreshold = NaN;

  constructor(readonly totalPositives: number) {
    if (totalPositives === 0) throw new RangeError('F1 needs at least one positive');
  }

  add(batch: ScoreGroupBatch): void {
    const { negatives, positives, scores } = batch;
    const totalPositives = this.totalPositives;
    let truePositives = this.truePositives;
    let predictedPositives = this.predictedPositives;
    for (let g = 0; g < batch.length; g++) {
      predictedPositives += positives[g] + negatives[g];
      // Without new true positives F1 can only fall, so only such groups are candidates.
      if (positives[g] === 0) continue;
      truePositives += positives[g];
      // Integer quotients: F1 values that are equal as fractions are equal as floats, so
      // the strict comparison really keeps the first (highest) threshold of a tie.
      const f1 = (2 * truePositives) / (predictedPositives + totalPositives);
      if (f1 > this.bestF1) {
        this.bestF1 = f1;
        this.bestThreshold = scores[g];
      }
    }
    this.truePositives = truePositives;
    this.predictedPositives = predictedPositives;
  }

  result(): F1Max {
    if (this.truePositives !== this.totalPositives) {
      throw new Error(`saw ${this.truePositives} of ${this.totalPositives} positives; totals and data disagree`);
    }
    return { f1: this.bestF1, threshold: this.bestThreshold };
  }
}

/** Image-level F1-max (labels: nonzero = anomalous). */
export function imageF1Max(scores: Float32Array | Float64Array, labels: Uint8Array): F1Max {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0) positives++;
  const accumulator = new F1Accumulator(positives);
  accumulator.add(groupItemScores(scores, labels));
  return accumulator.result();
}

/** Pixel-level F1-max over all pixels of all maps (masks: nonzero = defect pixel). */
export function pixelF1Max(maps: readonly Float32Array[], masks: readonly Uint8Array[]): F1Max {
  assertPixelInputs(maps, masks);
  const positives = maskPositivePixels(maps, masks);
  const accumulator = new F1Accumulator(positives.count);
  scanPixelScoreGroups(maps, positives, accumulator, { mergeNegativeRuns: true });
  return accumulator.result();
}
