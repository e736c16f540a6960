import {
  imageAuroc,
  imageScoresFromMaps,
  imageLabelsFromMasks,
  pixelAuroc,
  pixelRocCurve,
  rocCurve,
  IMAGE_SCORE_RULE,
} from '../../src/metrics';
import { HAND_MAPS, HAND_MASKS, expectClose, seededRandom } from './helpers';

/** Mann-Whitney U by counting all positive/negative pairs (ties count one half). */
function bruteForceAuroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] === 0) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i] > scores[j]) wins += 1;
      else if (scores[i] === scores[j]) wins += 0.5;
    }
  }
  return wins / pairs;
}

describe('imageAuroc', () => {
  it('counts ties across classes as one half', () => {
    expect(imageAuroc(Float32Array.of(0.5, 0.5, 0.5, 0.2), Uint8Array.of(1, 0, 0, 1))).toBe(0.25);
    expect(imageAuroc(Float32Array.of(1, 1, 0, 0), Uint8Array.of(1, 0, 1, 0))).toBe(0.5);
    expect(imageAuroc(Float64Array.of(3, 3, 3, 3), Uint8Array.of(1, 0, 1, 0))).toBe(0.5);
    expect(imageAuroc(Float64Array.of(2, 1, 1, 0), Uint8Array.of(1, 1, 0, 0))).toBe(0.875);
  });

  it('equals a brute-force Mann-Whitney count on random data with ties', () => {
    const random = seededRandom(42);
    for (let trial = 0; trial < 5; trial++) {
      const n = 200 + trial * 50;
      const labels = Uint8Array.from({ length: n }, () => (random() < 0.3 ? 1 : 0));
      const scores = Float64Array.from(labels, (label) => Math.round((random() + 0.3 * label) * 20) / 20);
      expectClose(imageAuroc(scores, labels), bruteForceAuroc(scores, labels), 1e-12);
      expectClose(
        imageAuroc(Float32Array.from(scores), labels),
        bruteForceAuroc(Float32Array.from(scores), labels),
        1e-12,
      );
    }
  });

  it('throws a RangeError when only one class occurs or a score is NaN', () => {
    expect(() => imageAuroc(Float32Array.of(1, 2), Uint8Array.of(1, 1))).toThrow(/both classes/);
    expect(() => imageAuroc(Float32Array.of(1, 2), Uint8Array.of(0, 0))).toThrow(RangeError);
    expect(() => imageAuroc(Float32Array.of(1, NaN), Uint8Array.of(0, 1))).toThrow(RangeError);
    expect(() => imageAuroc(Float32Array.of(1, 2), Uint8Array.of(0))).toThrow(RangeError);
  });
});

describe('rocCurve', () => {
  it('has one point per distinct score after (0, 0)', () => {
    const curve = rocCurve(Float64Array.of(0.9, 0.8, 0.8, 0.3), Uint8Array.of(1, 0, 1, 0));
    expect(Array.from(curve.fpr)).toEqual([0, 0, 0.5, 1]);
    expect(Array.from(curve.tpr)).toEqual([0, 0.5, 1, 1]);
    expect(Array.from(curve.thresholds)).toEqual([Infinity, 0.9, 0.8, 0.3]);
  });
});

describe('pixelAuroc', () => {
  it('matches the hand count on the worked example', () => {
    // Positives 0.9, 0.7, 0.3 beat 15, 14 and 11 of the 15 negatives: U = 40 of 45 pairs.
    expectClose(pixelAuroc(HAND_MAPS, HAND_MASKS), 40 / 45, 1e-15);
    const curve = pixelRocCurve(HAND_MAPS, HAND_MASKS);
    expect(curve.fpr).toHaveLength(10);
    expect(Array.from(curve.tpr.slice(0, 4))).toEqual([0, 1 / 3, 1 / 3, 2 / 3]);
    expect(curve.thresholds[1]).toBe(Math.fround(0.9));
  });

  it('equals the image-level computation on the flattened pixels', () => {
    const random = seededRandom(8);
    const maps = Array.from({ length: 4 }, () =>
      Float32Array.from({ length: 300 }, () => Math.round(random() * 40) / 8),
    );
    const masks = maps.map((map) => Uint8Array.from(map, (value) => (random() < value / 10 ? 255 : 0)));
    const flatScores = new Float32Array(1200);
    const flatLabels = new Uint8Array(1200);
    maps.forEach((map, m) => flatScores.set(map, m * 300));
    masks.forEach((mask, m) => flatLabels.set(mask, m * 300));
    expectClose(pixelAuroc(maps, masks), imageAuroc(flatScores, flatLabels), 1e-15);
    expect(pixelRocCurve(maps, masks)).toEqual(rocCurve(flatScores, flatLabels));
  });

  it('rejects NaN, shape mismatches and single-class data', () => {
    expect(() => pixelAuroc([Float32Array.of(0.1, NaN)], [Uint8Array.of(0, 1)])).toThrow(/NaN/);
    expect(() => pixelAuroc([Float32Array.of(0.1, 0.2)], [Uint8Array.of(0)])).toThrow(RangeError);
    expect(() => pixelAuroc([Float32Array.of(0.1)], [])).toThrow(RangeError);
    expect(() => pixelAuroc([Float32Array.of(0.1, 0.2)], [Uint8Array.of(0, 0)])).toThrow(RangeError);
  });
});

describe('image scores and labels', () => {
  it('takes the max of each map and flags masks with any defect pixel', () => {
    expect(IMAGE_SCORE_RULE).toBe('max');
    expect(Array.from(imageScoresFromMaps(HAND_MAPS))).toEqual([Math.fround(0.9), Math.fround(0.6)]);
    expect(Array.from(imageLabelsFromMasks(HAND_MASKS))).toEqual([1, 0]);
    expect(() => imageScoresFromMaps([Float32Array.of(NaN, 1)])).toThrow(RangeError);
    expect(() => imageScoresFromMaps([Float32Array.of(1, NaN)])).toThrow(RangeError);
    expect(() => imageScoresFromMaps([new Float32Array(0)])).toThrow(RangeError);
  });
});
