import {
  groupItemScores,
  maskPositivePixels,
  scanPixelScoreGroups,
  type PixelScanOptions,
  type PositivePixels,
  type ScoreGroupBatch,
} from '../../src/metrics';
import { float32BitsToKey, sortKeysDescendingInPlace } from '../../src/metrics/sort';
import { seededRandom } from './helpers';

interface Groups {
  scores: number[];
  negatives: number[];
  positives: number[];
  weights: number[];
}

function collect(scan: (sink: { add(batch: ScoreGroupBatch): void }) => void): Groups {
  const groups: Groups = { scores: [], negatives: [], positives: [], weights: [] };
  scan({
    add(batch) {
      for (let g = 0; g < batch.length; g++) {
        groups.scores.push(batch.scores[g]);
        groups.negatives.push(batch.negatives[g]);
        groups.positives.push(batch.positives[g]);
        groups.weights.push(batch.positiveWeights[g]);
      }
    },
  });
  return groups;
}

/** Scores over many magnitudes and signs, with ties, zeros of both signs and infinities. */
function awkwardMaps(seed: number, count: number, pixels: number): { maps: Float32Array[]; masks: Uint8Array[] } {
  const random = seededRandom(seed);
  const special = [0, -0, Infinity, -Infinity, 1e-45, -1e-45, 3.4e38];
  const maps = Array.from({ length: count }, () =>
    Float32Array.from({ length: pixels }, () => {
      const r = random();
      if (r < 0.05) return special[Math.floor(random() * special.length)];
      if (r < 0.4) return Math.round(random() * 8) / 4 - 1;
      return (random() - 0.3) * 10 ** Math.floor(random() * 12 - 6);
    }),
  );
  const masks = maps.map((map, m) =>
    m === 0 ? new Uint8Array(pixels) : Uint8Array.from(map, () => (random() < 0.2 ? 255 : 0)),
  );
  return { maps, masks };
}

describe('scanPixelScoreGroups', () => {
  const { maps, masks } = awkwardMaps(21, 5, 4000);
  const flatScores = new Float32Array(20000);
  const flatLabels = new Uint8Array(20000);
  maps.forEach((map, m) => flatScores.set(map, m * 4000));
  masks.forEach((mask, m) => flatLabels.set(mask, m * 4000));
  const expected = collect((sink) => sink.add(groupItemScores(flatScores, flatLabels)));

  it.each<[string, PixelScanOptions]>([
    ['default', {}],
    ['all dense', { denseBucketMinPixels: 1 }],
    ['all sorted, many passes', { denseBucketMinPixels: Infinity, maxBufferedPixels: 1500 }],
  ])('gives the same groups as sorting the flattened scores (%s)', (_, options) => {
    const positives = maskPositivePixels(maps, masks);
    const groups = collect((sink) => scanPixelScoreGroups(maps, positives, sink, options));
    expect(groups).toEqual(expected);
    expect(groups.scores.filter((score) => score === 0)).toEqual([0]); // -0 and +0 are one group
    expect(groups.scores[0]).toBe(Infinity);
    expect(groups.scores[groups.scores.length - 1]).toBe(-Infinity);
  });

  /** The expected groups with each run of consecutive positive-free groups as one (score NaN). */
  function mergeNegativeRuns(groups: Groups): Groups {
    const merged: Groups = { scores: [], negatives: [], positives: [], weights: [] };
    groups.scores.forEach((score, g) => {
      const last = merged.scores.length - 1;
      if (groups.positives[g] === 0 && last >= 0 && merged.positives[last] === 0) {
        merged.negatives[last] += groups.negatives[g];
        return;
      }
      merged.scores.push(groups.positives[g] === 0 ? NaN : score);
      merged.negatives.push(groups.negatives[g]);
      merged.positives.push(groups.positives[g]);
      merged.weights.push(groups.weights[g]);
    });
    return merged;
  }

  it.each<[string, PixelScanOptions]>([
    ['default', {}],
    ['all dense', { denseBucketMinPixels: 1 }],
    ['all sorted, many passes', { denseBucketMinPixels: Infinity, maxBufferedPixels: 1500 }],
    ['one bucket per pass', { maxBufferedPixels: 1 }],
  ])('merges the runs of negative-only scores when asked (%s)', (_, options) => {
    const positives = maskPositivePixels(maps, masks);
    const groups = collect((sink) =>
      scanPixelScoreGroups(maps, positives, sink, { ...options, mergeNegativeRuns: true }),
    );
    const merged = mergeNegativeRuns(expected);
    expect(groups).toEqual(merged);
    expect(groups.scores.length).toBeLessThan(expected.scores.length);
  });

  it('merges a run that spans buckets without positives, up to the last pixel', () => {
    // Positives only at 5 and 1e-3: the scores between them lie in many 16-bit key buckets.
    const map = Float32Array.of(7, 6, 5, 4, 3, 2, 1, 0.5, 0.25, 1e-3, 1e-4, 1e-5, -1);
    const mask = Uint8Array.from(map, (score) => (score === 5 || score === Math.fround(1e-3) ? 1 : 0));
    const groups = collect((sink) =>
      scanPixelScoreGroups([map], maskPositivePixels([map], [mask]), sink, { mergeNegativeRuns: true }),
    );
    expect(groups).toEqual({
      scores: [NaN, 5, NaN, Math.fround(1e-3), NaN],
      negatives: [2, 0, 6, 0, 3],
      positives: [0, 1, 0, 1, 0],
      weights: [0, 1, 0, 1, 0],
    });
  });

  it('throws when the positive list does not match the maps', () => {
    const positives = maskPositivePixels(maps, masks);
    const extra: PositivePixels = {
      ...positives,
      count: positives.count + 1,
      keys: Int32Array.of(...positives.keys, float32BitsToKey(new Int32Array(Float32Array.of(-12345).buffer)[0])),
      classes: Uint16Array.of(...positives.classes, 1),
    };
    expect(() => scanPixelScoreGroups(maps, extra, { add() {} })).toThrow(/positive pixels/);
  });
});

describe('sortKeysDescendingInPlace', () => {
  it('sorts keys descending in unsigned order, stably, moving the payload along', () => {
    const values = [0.5, -2, 3, -0, 0, 0.5, -Infinity, 7e-45];
    const keys = Int32Array.from(values, (value) => float32BitsToKey(new Int32Array(Float32Array.of(value).buffer)[0]));
    const payload = Uint16Array.from(values, (_, i) => i);
    sortKeysDescendingInPlace(keys, payload);
    expect(Array.from(payload)).toEqual([2, 0, 5, 7, 3, 4, 1, 6]);
  });
});
