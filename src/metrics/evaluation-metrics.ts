/**
 * The metrics of a finished evaluation from its decoded anomaly maps and ground-truth masks:
 * pure functions over src/metrics, no I/O.
 *
 * Resolution: maps and masks are compared at the model's input size (the map's own
 * resolution), as anomalib and the trainer's evaluation do on resized data. Masks are brought
 * there by pixel-centre nearest neighbour (PIL's Image.NEAREST, as training/data.py load_mask
 * does); image labels come from the full-resolution mask, so a defect too small to survive the
 * resize still makes its image anomalous.
 */
import {
  downsampleCurve,
  F1Accumulator,
  imageAuroc,
  imageF1Max,
  imageScoresFromMaps,
  ProAccumulator,
  regionPositivePixels,
  RocAccumulator,
  rocCurve,
  scanPixelScoreGroups,
  type CurvePoint,
  type ScoreGroupBatch,
  type ScoreGroupSink,
} from './index';

export interface EvaluatedImage {
  /** null for a good image. */
  defectType: string | null;
  /** 1 when the full-resolution mask has any nonzero pixel. */
  label: 0 | 1;
  /** The decoded anomaly map, width × height. */
  map: Float32Array;
  /** The mask at the map's resolution, nonzero = defect; all zero for a good image. */
  mask: Uint8Array;
}

export interface DefectMetrics {
  defectType: string;
  imageCount: number;
  imageAuroc: number | null;
  pixelAuroc: number | null;
  aupro: number | null;
}

export interface EvaluationMetrics {
  goodImageCount: number;
  defectiveImageCount: number;
  /** null where the metric is undefined: AUROC needs both classes, F1 a positive, pixel metrics a defect pixel. */
  imageAuroc: number | null;
  imageF1Max: number | null;
  imageF1Threshold: number | null;
  pixelAuroc: number | null;
  aupro: number | null;
  pixelF1Max: number | null;
  pixelF1Threshold: number | null;
  /** Image-level ROC (x = FPR, y = TPR), at most curvePoints points. */
  rocCurve: CurvePoint[];
  /** Pixel-level PRO (x = FPR, y = PRO) from FPR 0 up to the AUPRO limit, at most curvePoints points. */
  proCurve: CurvePoint[];
  /** One entry per defect type (sorted by name): its images against every good image. */
  perDefect: DefectMetrics[];
}

export interface EvaluationMetricsOptions {
  /** FPR integration limit of AUPRO, in (0, 1]. */
  proLimit: number;
  /** Most points kept per curve (>= 2). */
  curvePoints: number;
}

export const DEFAULT_CURVE_POINTS = 200;

/** 1 when the mask has any nonzero pixel. */
export function maskLabel(mask: Uint8Array): 0 | 1 {
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) return 1;
  return 0;
}

/**
 * Pixel-centre nearest-neighbour resize of a one-byte-per-pixel mask (source pixel
 * floor((x + 0.5) · srcWidth / width), as PIL's NEAREST); the result holds 0 and 1.
 */
export function resizeMaskNearest(
  mask: Uint8Array,
  srcWidth: number,
  srcHeight: number,
  width: number,
  height: number,
): Uint8Array {
  if (mask.length !== srcWidth * srcHeight)
    throw new RangeError(`a ${srcWidth}×${srcHeight} mask has ${srcWidth * srcHeight} pixels, got ${mask.length}`);
  const resized = new Uint8Array(width * height);
  const columns = new Int32Array(width);
  for (let x = 0; x < width; x++) columns[x] = Math.min(srcWidth - 1, Math.floor(((x + 0.5) * srcWidth) / width));
  for (let y = 0; y < height; y++) {
    const sourceRow = Math.min(srcHeight - 1, Math.floor(((y + 0.5) * srcHeight) / height)) * srcWidth;
    const row = y * width;
    for (let x = 0; x < width; x++) resized[row + x] = mask[sourceRow + columns[x]] !== 0 ? 1 : 0;
  }
  return resized;
}

interface PixelResults {
  auroc: number;
  aupro: number;
  f1Max: number;
  f1Threshold: number;
  proCurve: CurvePoint[];
}

/**
 * Keeps the (FPR, PRO) points up to the limit for plotting, with the arithmetic of
 * ProAccumulator, but only points that moved the curve by a visible step, so memory stays
 * bounded whatever the number of distinct pixel scores; the last point lies at the limit.
 */
class ProCurveSampler implements ScoreGroupSink {
  private falsePositives = 0;
  private overlapSum = 0;
  private readonly xs: number[] = [0];
  private readonly ys: number[] = [0];
  private last: { x: number; y: number } = { x: 0, y: 0 };
  private done = false;
  private readonly xStep: number;
  private readonly yStep: number;

  constructor(
    private readonly totalNegatives: number,
    private readonly regionCount: number,
    private readonly limit: number,
    points: number,
  ) {
    this.xStep = limit / (4 * points);
    this.yStep = 1 / (4 * points);
  }

  add(batch: ScoreGroupBatch): void {
    for (let g = 0; g < batch.length && !this.done; g++) {
      this.falsePositives += batch.negatives[g];
      this.overlapSum += batch.positiveWeights[g];
      const x = this.falsePositives / this.totalNegatives;
      const y = Math.min(this.overlapSum / this.regionCount, 1);
      if (x > this.limit) {
        // The curve ends at the limit, at the height AUPRO integrates to (linear interpolation).
        const { x: previousX, y: previousY } = this.last;
        if (previousX < this.limit)
          this.last = { x: this.limit, y: previousY + ((y - previousY) * (this.limit - previousX)) / (x - previousX) };
        this.done = true;
        break;
      }
      this.last = { x, y };
      const previousX = this.xs[this.xs.length - 1] as number;
      const previousY = this.ys[this.ys.length - 1] as number;
      if (x - previousX >= this.xStep || Math.abs(y - previousY) >= this.yStep) {
        this.xs.push(x);
        this.ys.push(y);
      }
    }
  }

  points(maxPoints: number): CurvePoint[] {
    if (this.xs[this.xs.length - 1] !== this.last.x || this.ys[this.ys.length - 1] !== this.last.y) {
      this.xs.push(this.last.x);
      this.ys.push(this.last.y);
    }
    return downsampleCurve(this.xs, this.ys, maxPoints);
  }
}

/** Pixel AUROC, AUPRO and pixel F1-max in one scan (as evaluatePixelMetrics), plus the PRO curve; null without defect or normal pixels. */
function pixelResults(
  maps: readonly Float32Array[],
  masks: readonly Uint8Array[],
  width: number,
  height: number,
  options: EvaluationMetricsOptions,
): PixelResults | null {
  const positives = regionPositivePixels(maps, masks, width, height);
  if (positives.count === 0 || positives.negativePixels === 0 || positives.regionCount === 0) return null;
  const roc = new RocAccumulator(positives.count, positives.negativePixels);
  const pro = new ProAccumulator(positives.negativePixels, positives.regionCount, options.proLimit);
  const f1 = new F1Accumulator(positives.count);
  const curve = new ProCurveSampler(
    positives.negativePixels,
    positives.regionCount,
    options.proLimit,
    options.curvePoints,
  );
  scanPixelScoreGroups(
    maps,
    positives,
    {
      add(batch: ScoreGroupBatch): void {
        roc.add(batch);
        pro.add(batch);
        f1.add(batch);
        curve.add(batch);
      },
    },
    { mergeNegativeRuns: true },
  );
  const f1Max = f1.result();
  return {
    auroc: roc.auroc(),
    aupro: pro.aupro(),
    f1Max: f1Max.f1,
    f1Threshold: f1Max.threshold,
    proCurve: curve.points(options.curvePoints),
  };
}

function countPositives(labels: Uint8Array): number {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i] !== 0 ? 1 : 0;
  return positives;
}

/** Image AUROC, or null when only one class occurs. */
function imageAurocOrNull(scores: Float64Array, labels: Uint8Array): number | null {
  const positives = countPositives(labels);
  return positives === 0 || positives === labels.length ? null : imageAuroc(scores, labels);
}

/**
 * Every metric of an evaluation. Image scores are the maps' maxima (IMAGE_SCORE_RULE).
 * Peak extra memory: about 2.2 bytes per pixel for the pixel scan (see evaluatePixelMetrics)
 * on top of the maps (4 bytes a pixel) and masks (1) the caller holds.
 */
export function computeEvaluationMetrics(
  images: readonly EvaluatedImage[],
  width: number,
  height: number,
  options: EvaluationMetricsOptions,
): EvaluationMetrics {
  if (!(options.proLimit > 0 && options.proLimit <= 1))
    throw new RangeError(`proLimit must be in (0, 1], got ${options.proLimit}`);
  images.forEach((image, index) => {
    if (image.map.length !== width * height || image.mask.length !== width * height) {
      throw new RangeError(
        `image ${index}: map and mask must have ${width}×${height} values, got ${image.map.length} and ${image.mask.length}`,
      );
    }
  });
  const maps = images.map((image) => image.map);
  const masks = images.map((image) => image.mask);
  const labels = Uint8Array.from(images, (image) => image.label);
  const scores = imageScoresFromMaps(maps);
  const positives = countPositives(labels);

  const bothClasses = positives > 0 && positives < labels.length;
  const imageF1 = positives > 0 ? imageF1Max(scores, labels) : null;
  const roc = bothClasses ? rocCurve(scores, labels) : null;
  const pixels = images.length > 0 ? pixelResults(maps, masks, width, height, options) : null;

  const goodIndexes = images.flatMap((image, index) => (image.defectType === null ? [index] : []));
  const defectTypes = [
    ...new Set(images.flatMap((image) => (image.defectType === null ? [] : [image.defectType]))),
  ].sort();
  const perDefect = defectTypes.map((defectType): DefectMetrics => {
    const indexes = [
      ...goodIndexes,
      ...images.flatMap((image, index) => (image.defectType === defectType ? [index] : [])),
    ];
    const subsetPixels = pixelResults(
      indexes.map((index) => maps[index] as Float32Array),
      indexes.map((index) => masks[index] as Uint8Array),
      width,
      height,
      { ...options, curvePoints: 2 },
    );
    return {
      defectType,
      imageCount: indexes.length - goodIndexes.length,
      imageAuroc: imageAurocOrNull(
        Float64Array.from(indexes, (index) => scores[index] as number),
        Uint8Array.from(indexes, (index) => labels[index] as number),
      ),
      pixelAuroc: subsetPixels?.auroc ?? null,
      aupro: subsetPixels?.aupro ?? null,
    };
  });

  return {
    goodImageCount: goodIndexes.length,
    defectiveImageCount: images.length - goodIndexes.length,
    imageAuroc: bothClasses ? imageAuroc(scores, labels) : null,
    imageF1Max: imageF1?.f1 ?? null,
    imageF1Threshold: imageF1?.threshold ?? null,
    pixelAuroc: pixels?.auroc ?? null,
    aupro: pixels?.aupro ?? null,
    pixelF1Max: pixels?.f1Max ?? null,
    pixelF1Threshold: pixels?.f1Threshold ?? null,
    rocCurve: roc ? downsampleCurve(roc.fpr, roc.tpr, options.curvePoints) : [],
    proCurve: pixels?.proCurve ?? [],
    perDefect,
  };
}
