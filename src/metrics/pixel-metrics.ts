/** All pixel-level metrics from a single pass over the sorted pixel scores. */
import { F1Accumulator, type F1Max } from './f1';
import { regionPositivePixels } from './positive-pixels';
import { DEFAULT_PRO_LIMIT, ProAccumulator, assertProLimit } from './pro';
import { RocAccumulator } from './roc';
import { type PixelScanOptions, type ScoreGroupBatch, scanPixelScoreGroups } from './score-groups';
import { assertImageSize, assertPixelInputs } from './validation';

export interface PixelMetrics {
  readonly auroc: number;
  readonly aupro: number;
  readonly proLimit: number;
  readonly f1Max: F1Max;
  readonly regionCount: number;
  readonly positivePixels: number;
  readonly negativePixels: number;
}

export interface PixelMetricsOptions extends PixelScanOptions {
  /** FPR integration limit of AUPRO (default 0.3). */
  readonly proLimit?: number;
}

/**
 * Pixel AUROC, AUPRO and pixel F1-max of the same maps and masks with one sort of the
 * pixel scores: equal to calling pixelAuroc, aupro and pixelF1Max separately. Peak extra
 * memory: 2 bytes per pixel (the scan buffer, at most PixelScanOptions.maxBufferedPixels
 * of them) + up to 18 bytes per defect pixel (sorted positive list) + 8 bytes per pixel of
 * one image (labeller) + ~3 MiB of tables: about 2.2 bytes per pixel when ~1% of pixels
 * are defects (measured by bench/metrics.bench.ts), against the maps' own 4.
 */
export function evaluatePixelMetrics(
  maps: readonly Float32Array[],
  masks: readonly Uint8Array[],
  width: number,
  height: number,
  options: PixelMetricsOptions = {},
): PixelMetrics {
  const proLimit = options.proLimit ?? DEFAULT_PRO_LIMIT;
  assertPixelInputs(maps, masks);
  assertImageSize(maps, width, height);
  assertProLimit(proLimit);
  const positives = regionPositivePixels(maps, masks, width, height);
  const roc = new RocAccumulator(positives.count, positives.negativePixels);
  const pro = new ProAccumulator(positives.negativePixels, positives.regionCount, proLimit);
  const f1 = new F1Accumulator(positives.count);
  const sink = {
    add(batch: ScoreGroupBatch): void {
      roc.add(batch);
      pro.add(batch);
      f1.add(batch);
    },
  };
  scanPixelScoreGroups(maps, positives, sink, { mergeNegativeRuns: true, ...options });
  return {
    auroc: roc.auroc(),
    aupro: pro.aupro(),
    proLimit,
    f1Max: f1.result(),
    regionCount: positives.regionCount,
    positivePixels: positives.count,
    negativePixels: positives.negativePixels,
  };
}
