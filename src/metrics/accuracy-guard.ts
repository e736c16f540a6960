/**
 * The accuracy guard's comparison, without I/O: the metrics of a candidate (an INT8 version's
 * evaluation) against those of a reference (its fp32 version's, on the same snapshot), with a
 * tolerance in points (1 point = 0.01), as `training/quantize.py` compares them: a metric fails
 * when it dropped (reference − candidate) by more than the tolerance; improvements never fail.
 */

/** The metrics compared, in the order failures are reported. */
export const GUARDED_METRICS = ['imageAuroc', 'pixelAuroc', 'aupro'] as const;

export type GuardedMetric = (typeof GUARDED_METRICS)[number];

/** How failures name each metric. */
export const GUARDED_METRIC_LABELS: Readonly<Record<GuardedMetric, string>> = {
  imageAuroc: 'image AUROC',
  pixelAuroc: 'pixel AUROC',
  aupro: 'AUPRO',
};

/** One evaluation's metrics in [0, 1]; null where it had none (e.g. no defective image). */
export type GuardMetrics = Readonly<Record<GuardedMetric, number | null>>;

/** A metric that dropped beyond the tolerance, or that the candidate lacks while the reference has it. */
export interface MetricDrop {
  metric: GuardedMetric;
  reference: number;
  /** null: the candidate's evaluation did not measure it. */
  candidate: number | null;
  /** 100 × (reference − candidate); null when the candidate has no value. */
  dropPoints: number | null;
}

export type AccuracyComparison = { passed: true } | { passed: false; failures: MetricDrop[] };

/**
 * Rounding slack, in points: a drop of exactly the tolerance (e.g. 0.5124 → 0.5074 at 0.5 points)
 * passes, whatever the last bit of its floating-point difference says.
 */
const SLACK_POINTS = 1e-9;

/**
 * Compares the candidate's metrics with the reference's. A metric the reference lacks (null) is
 * not compared; one the reference has and the candidate lacks fails.
 */
export function compareAccuracy(
  reference: GuardMetrics,
  candidate: GuardMetrics,
  tolerancePoints: number,
): AccuracyComparison {
  if (!Number.isFinite(tolerancePoints) || tolerancePoints < 0)
    throw new RangeError(`the tolerance must be a finite number of points >= 0, not ${tolerancePoints}`);
  const failures: MetricDrop[] = [];
  for (const metric of GUARDED_METRICS) {
    const before = reference[metric];
    const after = candidate[metric];
    if (before === null || !Number.isFinite(before)) continue;
    if (after === null || !Number.isFinite(after)) {
      failures.push({ metric, reference: before, candidate: null, dropPoints: null });
      continue;
    }
    const dropPoints = 100 * (before - after);
    if (dropPoints > tolerancePoints + SLACK_POINTS)
      failures.push({ metric, reference: before, candidate: after, dropPoints });
  }
  return failures.length === 0 ? { passed: true } : { passed: false, failures };
}

/** E.g. `AUPRO dropped 0.62 points (0.5124 → 0.5062)`. */
export function describeDrop(drop: MetricDrop): string {
  const label = GUARDED_METRIC_LABELS[drop.metric];
  if (drop.candidate === null || drop.dropPoints === null)
    return `${label} was not measured (reference ${drop.reference.toFixed(4)})`;
  return `${label} dropped ${drop.dropPoints.toFixed(2)} points (${drop.reference.toFixed(4)} → ${drop.candidate.toFixed(4)})`;
}
