/**
 * Compares every metric with the values of the independent numpy/scipy implementation in
 * scripts/metrics_golden.py (regenerate with `python3 scripts/metrics_golden.py`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  aupro,
  evaluatePixelMetrics,
  imageAuroc,
  imageF1Max,
  imageLabelsFromMasks,
  imageScoresFromMaps,
  labelConnectedComponents,
  pixelAuroc,
  pixelF1Max,
  pixelRocCurve,
  proCurve,
} from '../../src/metrics';
import { expectClose } from './helpers';

const FIXTURES = join(__dirname, '..', 'fixtures', 'metrics');

interface F1Expectation {
  f1: number;
  threshold: number;
}

interface CurveExpectation {
  fpr: number[];
  thresholds: number[];
}

interface GoldenCase {
  name: string;
  count: number;
  width: number;
  height: number;
  pixel_auroc: number;
  pixel_f1: F1Expectation;
  aupro: { limit: number; value: number }[];
  region_count: number;
  positive_pixels: number;
  distinct_scores: number;
  image_scores: number[];
  image_labels: number[];
  image_auroc: number;
  image_f1: F1Expectation;
  components: { count8: number; count4: number; areas8: number[] }[];
  pro_curve?: CurveExpectation & { pro: number[] };
  roc_curve?: CurveExpectation & { tpr: number[] };
}

interface GoldenFile {
  cases: GoldenCase[];
  float64_scores: { scores: number[]; labels: number[]; auroc: number; f1: F1Expectation };
}

const golden = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as GoldenFile;

/** Copies a little-endian fixture file into a fresh, aligned buffer. */
function readBytes(file: string): ArrayBuffer {
  return new Uint8Array(readFileSync(join(FIXTURES, file))).buffer;
}

function loadCase(golden: GoldenCase): { maps: Float32Array[]; masks: Uint8Array[] } {
  const pixels = golden.width * golden.height;
  const mapData = new Float32Array(readBytes(`${golden.name}.maps.f32`));
  const maskData = new Uint8Array(readBytes(`${golden.name}.masks.u8`));
  expect(mapData.length).toBe(golden.count * pixels);
  const maps = Array.from({ length: golden.count }, (_, m) => mapData.subarray(m * pixels, (m + 1) * pixels));
  const masks = Array.from({ length: golden.count }, (_, m) => maskData.subarray(m * pixels, (m + 1) * pixels));
  return { maps, masks };
}

function expectCurve(actual: Float64Array, expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((value, i) => expectClose(actual[i], value));
}

it('runs on a little-endian machine (the fixtures are little-endian)', () => {
  expect(new Uint8Array(Uint16Array.of(1).buffer)[0]).toBe(1);
});

describe.each(golden.cases.map((entry) => [entry.name, entry] as const))('golden case %s', (_, expected) => {
  const { maps, masks } = loadCase(expected);
  const { width, height } = expected;

  it('pixel AUROC and pixel F1-max', () => {
    expectClose(pixelAuroc(maps, masks), expected.pixel_auroc);
    const f1 = pixelF1Max(maps, masks);
    expectClose(f1.f1, expected.pixel_f1.f1);
    expect(f1.threshold).toBe(expected.pixel_f1.threshold);
  });

  it('AUPRO at every limit', () => {
    for (const { limit, value } of expected.aupro) expectClose(aupro(maps, masks, width, height, limit), value);
  });

  it('PRO curve length (distinct scores + 2)', () => {
    expect(proCurve(maps, masks, width, height).fpr).toHaveLength(expected.distinct_scores + 2);
  });

  it('all pixel metrics from one pass, through every scan path', () => {
    const scanVariants = [
      {},
      { denseBucketMinPixels: 1 }, // every bucket through the dense table
      { denseBucketMinPixels: Number.MAX_SAFE_INTEGER, maxBufferedPixels: 997 }, // sorted buckets, many passes
      { maxBufferedPixels: 1 }, // one bucket per pass over the maps
    ];
    const mergeModes = [{ mergeNegativeRuns: true }, { mergeNegativeRuns: false }];
    for (const scan of scanVariants.flatMap((variant) => mergeModes.map((merge) => ({ ...variant, ...merge })))) {
      const { limit, value } = expected.aupro[0];
      const metrics = evaluatePixelMetrics(maps, masks, width, height, { ...scan, proLimit: limit });
      expectClose(metrics.auroc, expected.pixel_auroc);
      expectClose(metrics.aupro, value);
      expectClose(metrics.f1Max.f1, expected.pixel_f1.f1);
      expect(metrics.f1Max.threshold).toBe(expected.pixel_f1.threshold);
      expect(metrics.regionCount).toBe(expected.region_count);
      expect(metrics.positivePixels).toBe(expected.positive_pixels);
    }
  });

  it('image scores, labels, AUROC and F1-max', () => {
    const scores = imageScoresFromMaps(maps);
    const labels = imageLabelsFromMasks(masks);
    expect(Array.from(scores)).toEqual(expected.image_scores);
    expect(Array.from(labels)).toEqual(expected.image_labels);
    if (new Set(expected.image_labels).size === 2) expectClose(imageAuroc(scores, labels), expected.image_auroc);
    const f1 = imageF1Max(scores, labels);
    expectClose(f1.f1, expected.image_f1.f1);
    expect(f1.threshold).toBe(expected.image_f1.threshold);
  });

  it('connected components equal scipy.ndimage.label', () => {
    masks.forEach((mask, m) => {
      const eight = labelConnectedComponents(mask, width, height, 8);
      const four = labelConnectedComponents(mask, width, height, 4);
      expect([eight.count, four.count, Array.from(eight.areas.subarray(1))]).toEqual([
        expected.components[m].count8,
        expected.components[m].count4,
        expected.components[m].areas8,
      ]);
    });
  });

  if (expected.pro_curve !== undefined && expected.roc_curve !== undefined) {
    const { pro_curve: expectedPro, roc_curve: expectedRoc } = expected;
    it('whole PRO and ROC curves', () => {
      const pro = proCurve(maps, masks, width, height);
      expectCurve(pro.fpr, expectedPro.fpr);
      expectCurve(pro.pro, expectedPro.pro);
      expect(Array.from(pro.thresholds.subarray(1, -1))).toEqual(expectedPro.thresholds);
      const roc = pixelRocCurve(maps, masks);
      expectCurve(roc.fpr, expectedRoc.fpr);
      expectCurve(roc.tpr, expectedRoc.tpr);
      expect(Array.from(roc.thresholds.subarray(1))).toEqual(expectedRoc.thresholds);
    });
  }
});

describe('golden float64 item scores', () => {
  it('image AUROC and F1-max with ties, tiny and signed-zero scores', () => {
    const { scores, labels, auroc, f1 } = golden.float64_scores;
    const scoreArray = Float64Array.from(scores);
    const labelArray = Uint8Array.from(labels);
    expectClose(imageAuroc(scoreArray, labelArray), auroc);
    const best = imageF1Max(scoreArray, labelArray);
    expectClose(best.f1, f1.f1);
    expect(best.threshold).toBe(f1.threshold);
  });
});
