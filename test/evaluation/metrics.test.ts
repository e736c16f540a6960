// The evaluation's pure parts: metrics aggregation (equal to src/metrics called directly),
// per-defect tables, undefined metrics, mask resizing against PIL, and the map object format.
import {
  evaluatePixelMetrics,
  imageAuroc,
  imageF1Max,
  imageScoresFromMaps,
  proCurve,
  rocCurve,
} from '../../src/metrics';
import { decodeAnomalyMap, encodeAnomalyMap } from '../../src/formats/anomaly-map-codec';
import { decodeMapObject, encodeMapObject, MapObjectFormatError } from '../../src/formats/anomaly-map-object';
import {
  computeEvaluationMetrics,
  maskLabel,
  resizeMaskNearest,
  type EvaluatedImage,
} from '../../src/metrics/evaluation-metrics';
import { seededRandom } from '../inference/helpers';

const WIDTH = 24;
const HEIGHT = 20;
const OPTIONS = { proLimit: 0.3, curvePoints: 50 };

/** Good images: noise; defective ones: a rectangle (or two) scoring higher than its surroundings, more or less. */
function syntheticImages(seed: number, good: number, defects: Record<string, number>): EvaluatedImage[] {
  const random = seededRandom(seed);
  const images: EvaluatedImage[] = [];
  const noiseMap = (): Float32Array => Float32Array.from({ length: WIDTH * HEIGHT }, () => random());
  for (let index = 0; index < good; index += 1)
    images.push({ defectType: null, label: 0, map: noiseMap(), mask: new Uint8Array(WIDTH * HEIGHT) });
  for (const [defectType, count] of Object.entries(defects)) {
    for (let index = 0; index < count; index += 1) {
      const map = noiseMap();
      const mask = new Uint8Array(WIDTH * HEIGHT);
      const regions = 1 + (index % 2);
      for (let region = 0; region < regions; region += 1) {
        const x0 = Math.floor(random() * (WIDTH - 6));
        const y0 = Math.floor(random() * (HEIGHT - 5));
        const lift = random() * 0.3;
        for (let y = y0; y < y0 + 3 + region; y += 1) {
          for (let x = x0; x < x0 + 4; x += 1) {
            mask[y * WIDTH + x] = 1;
            map[y * WIDTH + x] = (map[y * WIDTH + x] as number) + lift;
          }
        }
      }
      images.push({ defectType, label: 1, map, mask });
    }
  }
  return images;
}

describe('computeEvaluationMetrics', () => {
  const images = syntheticImages(3, 12, { scratch: 5, hole: 4, crack: 3 });
  const metrics = computeEvaluationMetrics(images, WIDTH, HEIGHT, OPTIONS);
  const maps = images.map((image) => image.map);
  const masks = images.map((image) => image.mask);
  const labels = Uint8Array.from(images, (image) => image.label);
  const scores = imageScoresFromMaps(maps);

  test('equals the src/metrics functions called on the same maps, masks and labels', () => {
    const pixels = evaluatePixelMetrics(maps, masks, WIDTH, HEIGHT, { proLimit: OPTIONS.proLimit });
    const f1 = imageF1Max(scores, labels);
    expect(metrics).toMatchObject({
      goodImageCount: 12,
      defectiveImageCount: 12,
      imageAuroc: imageAuroc(scores, labels),
      imageF1Max: f1.f1,
      imageF1Threshold: f1.threshold,
      pixelAuroc: pixels.auroc,
      aupro: pixels.aupro,
      pixelF1Max: pixels.f1Max.f1,
      pixelF1Threshold: pixels.f1Max.threshold,
    });
    // Not trivially perfect or random, so that the comparison means something.
    expect(metrics.imageAuroc).toBeGreaterThan(0.5);
    expect(metrics.imageAuroc).toBeLessThan(1);
  });

  test('per defect type: its images against every good image, sorted by name', () => {
    expect(metrics.perDefect.map((entry) => [entry.defectType, entry.imageCount])).toEqual([
      ['crack', 3],
      ['hole', 4],
      ['scratch', 5],
    ]);
    for (const entry of metrics.perDefect) {
      const subset = images.filter((image) => image.defectType === null || image.defectType === entry.defectType);
      const subsetMaps = subset.map((image) => image.map);
      const subsetLabels = Uint8Array.from(subset, (image) => image.label);
      const pixels = evaluatePixelMetrics(
        subsetMaps,
        subset.map((image) => image.mask),
        WIDTH,
        HEIGHT,
        { proLimit: OPTIONS.proLimit },
      );
      expect(entry).toEqual({
        defectType: entry.defectType,
        imageCount: entry.imageCount,
        imageAuroc: imageAuroc(imageScoresFromMaps(subsetMaps), subsetLabels),
        pixelAuroc: pixels.auroc,
        aupro: pixels.aupro,
      });
    }
  });

  test('curves: the image ROC (all of it, as few points as it has) and the PRO curve up to the AUPRO limit', () => {
    const roc = rocCurve(scores, labels);
    expect(metrics.rocCurve.length).toBeLessThanOrEqual(OPTIONS.curvePoints);
    expect(metrics.rocCurve[0]).toEqual({ x: 0, y: 0 });
    expect(metrics.rocCurve[metrics.rocCurve.length - 1]).toEqual({ x: 1, y: 1 });
    for (const point of metrics.rocCurve)
      expect(Array.from(roc.fpr).some((fpr, index) => fpr === point.x && roc.tpr[index] === point.y)).toBe(true);

    expect(metrics.proCurve.length).toBeGreaterThan(2);
    expect(metrics.proCurve.length).toBeLessThanOrEqual(OPTIONS.curvePoints);
    expect(metrics.proCurve[0]).toEqual({ x: 0, y: 0 });
    metrics.proCurve.forEach((point, index) => {
      expect(point.x).toBeLessThanOrEqual(OPTIONS.proLimit);
      expect(point.y).toBeGreaterThanOrEqual(0);
      expect(point.y).toBeLessThanOrEqual(1);
      if (index > 0) expect(point.x).toBeGreaterThanOrEqual((metrics.proCurve[index - 1] as { x: number }).x);
    });
    // The last point lies at the limit, on the segment of the full curve that crosses it.
    const full = proCurve(maps, masks, WIDTH, HEIGHT);
    const beyond = full.fpr.findIndex((fpr) => fpr > OPTIONS.proLimit);
    const [x0, y0, x1, y1] = [
      full.fpr[beyond - 1],
      full.pro[beyond - 1],
      full.fpr[beyond],
      full.pro[beyond],
    ] as number[];
    const last = metrics.proCurve[metrics.proCurve.length - 1] as { x: number; y: number };
    expect(last.x).toBe(OPTIONS.proLimit);
    expect(last.y).toBeCloseTo(y0 + ((y1 - y0) * (OPTIONS.proLimit - x0)) / (x1 - x0), 12);
  });

  test('metrics that are undefined are null: no defective image, or no good image', () => {
    const goodOnly = computeEvaluationMetrics(syntheticImages(5, 6, {}), WIDTH, HEIGHT, OPTIONS);
    expect(goodOnly).toEqual({
      goodImageCount: 6,
      defectiveImageCount: 0,
      imageAuroc: null,
      imageF1Max: null,
      imageF1Threshold: null,
      pixelAuroc: null,
      aupro: null,
      pixelF1Max: null,
      pixelF1Threshold: null,
      rocCurve: [],
      proCurve: [],
      perDefect: [],
    });

    const defectiveOnly = computeEvaluationMetrics(syntheticImages(6, 0, { hole: 3 }), WIDTH, HEIGHT, OPTIONS);
    expect(defectiveOnly.imageAuroc).toBeNull();
    expect(defectiveOnly.rocCurve).toEqual([]);
    expect(defectiveOnly.imageF1Max).toBe(1);
    expect(defectiveOnly.pixelAuroc).not.toBeNull();
    expect(defectiveOnly.perDefect).toEqual([
      {
        defectType: 'hole',
        imageCount: 3,
        imageAuroc: null,
        pixelAuroc: defectiveOnly.pixelAuroc,
        aupro: defectiveOnly.aupro,
      },
    ]);
  });

  test('an image labelled anomalous whose defect vanished in the resize still counts at image level', () => {
    const images = syntheticImages(8, 4, { hole: 2 });
    const vanished: EvaluatedImage = {
      defectType: 'speck',
      label: 1,
      map: Float32Array.from({ length: WIDTH * HEIGHT }, () => 5),
      mask: new Uint8Array(WIDTH * HEIGHT),
    };
    const metrics = computeEvaluationMetrics([...images, vanished], WIDTH, HEIGHT, OPTIONS);
    expect(metrics.defectiveImageCount).toBe(3);
    expect(metrics.perDefect.find((entry) => entry.defectType === 'speck')).toMatchObject({
      imageCount: 1,
      imageAuroc: 1,
      pixelAuroc: null,
      aupro: null,
    });
  });

  test('refuses maps or masks of another size and a PRO limit outside (0, 1]', () => {
    const images = syntheticImages(9, 2, { hole: 1 });
    expect(() => computeEvaluationMetrics(images, WIDTH + 1, HEIGHT, OPTIONS)).toThrow(RangeError);
    expect(() => computeEvaluationMetrics(images, WIDTH, HEIGHT, { ...OPTIONS, proLimit: 0 })).toThrow(RangeError);
  });
});

describe('masks', () => {
  // A 9×7 mask with every fifth pixel set, and PIL's Image.NEAREST resize of it (computed with Pillow).
  const source = Uint8Array.from({ length: 9 * 7 }, (_, index) => (index % 5 === 0 ? 255 : 0));

  test('resizeMaskNearest picks pixel centres exactly as PIL NEAREST does, down and up', () => {
    expect(Array.from(resizeMaskNearest(source, 9, 7, 4, 3))).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
    expect(Array.from(resizeMaskNearest(source, 9, 7, 13, 10))).toEqual([
      1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0,
      0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0,
      0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0,
      0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    ]);
    expect(Array.from(resizeMaskNearest(source, 9, 7, 9, 7))).toEqual(Array.from(source, (value) => (value ? 1 : 0)));
  });

  test('maskLabel: 1 when any pixel is nonzero', () => {
    expect(maskLabel(new Uint8Array(10))).toBe(0);
    const one = new Uint8Array(10);
    one[9] = 1;
    expect(maskLabel(one)).toBe(1);
  });
});

describe('map objects', () => {
  test('round trip: the header gives the size, the values are the codec’s, and the maximum survives exactly', () => {
    const random = seededRandom(21);
    const map = Float32Array.from({ length: 12 * 8 }, () => random() * 3 - 1);
    const bytes = encodeMapObject(map, 12, 8);
    expect(bytes.length).toBe(32 + 12 * 8 * 2);
    const decoded = decodeMapObject(bytes);
    expect(decoded.width).toBe(12);
    expect(decoded.height).toBe(8);
    expect(Array.from(decoded.map)).toEqual(Array.from(decodeAnomalyMap(encodeAnomalyMap(map))));
    expect(imageScoresFromMaps([decoded.map])[0]).toBe(imageScoresFromMaps([map])[0]);
  });

  test('refuses a wrong size and bytes that are not a map object', () => {
    expect(() => encodeMapObject(new Float32Array(5), 2, 2)).toThrow(RangeError);
    expect(() => decodeMapObject(Buffer.from('not a map object at all, but long enough'))).toThrow(
      MapObjectFormatError,
    );
    const truncated = encodeMapObject(new Float32Array(4), 2, 2).subarray(0, 36);
    expect(() => decodeMapObject(truncated)).toThrow(MapObjectFormatError);
  });
});
