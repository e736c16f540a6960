// The accuracy guard's comparison alone (src/metrics/accuracy-guard.ts): plain numbers in,
// pass or the failing metrics with their drops out.
import { compareAccuracy, describeDrop, type GuardMetrics } from '../../src/metrics/accuracy-guard';

const reference: GuardMetrics = { imageAuroc: 0.9512, pixelAuroc: 0.9234, aupro: 0.5124 };

test('equal metrics, and drops within the tolerance (the boundary included), pass', () => {
  expect(compareAccuracy(reference, reference, 0.5)).toEqual({ passed: true });
  const within = { imageAuroc: 0.9463, pixelAuroc: 0.9185, aupro: 0.5075 };
  expect(compareAccuracy(reference, within, 0.5)).toEqual({ passed: true });
  // Exactly the tolerance: 0.5124 → 0.5074 is 0.5 points, whatever the float difference's last bit says.
  expect(compareAccuracy(reference, { ...reference, aupro: 0.5074 }, 0.5)).toEqual({ passed: true });
});

test.each([
  ['imageAuroc', 'image AUROC', 0.9461, 0.51],
  ['pixelAuroc', 'pixel AUROC', 0.9, 2.34],
  ['aupro', 'AUPRO', 0.5062, 0.62],
] as const)('%s failing alone is the only failure, with both values and its drop', (metric, label, value, points) => {
  const comparison = compareAccuracy(reference, { ...reference, [metric]: value }, 0.5);
  expect(comparison.passed).toBe(false);
  if (comparison.passed) return;
  expect(comparison.failures).toHaveLength(1);
  const [failure] = comparison.failures;
  expect(failure).toMatchObject({ metric, reference: reference[metric], candidate: value });
  expect(failure?.dropPoints).toBeCloseTo(points, 9);
  expect(describeDrop(failure!)).toBe(
    `${label} dropped ${points.toFixed(2)} points (${reference[metric]?.toFixed(4)} → ${value.toFixed(4)})`,
  );
});

test('the AUPRO example of the issue reads as documented', () => {
  const comparison = compareAccuracy(reference, { ...reference, aupro: 0.5062 }, 0.5);
  expect(comparison.passed ? [] : comparison.failures.map(describeDrop)).toEqual([
    'AUPRO dropped 0.62 points (0.5124 → 0.5062)',
  ]);
});

test('several failing metrics are reported in a fixed order: image AUROC, pixel AUROC, AUPRO', () => {
  const comparison = compareAccuracy(reference, { imageAuroc: 0.5, pixelAuroc: 0.5, aupro: 0.1 }, 0.5);
  expect(comparison.passed ? [] : comparison.failures.map((failure) => failure.metric)).toEqual([
    'imageAuroc',
    'pixelAuroc',
    'aupro',
  ]);
});

test('improvements never fail, however large, at any tolerance', () => {
  expect(compareAccuracy(reference, { imageAuroc: 1, pixelAuroc: 1, aupro: 1 }, 0)).toEqual({ passed: true });
  expect(compareAccuracy({ imageAuroc: 0.1, pixelAuroc: 0.1, aupro: 0 }, reference, 0.5)).toEqual({ passed: true });
});

test('tolerance 0: equal passes, the smallest drop fails', () => {
  expect(compareAccuracy(reference, reference, 0)).toEqual({ passed: true });
  const comparison = compareAccuracy(reference, { ...reference, pixelAuroc: 0.9233 }, 0);
  expect(comparison.passed ? [] : comparison.failures.map((failure) => failure.metric)).toEqual(['pixelAuroc']);
});

test('a metric the reference lacks is not compared; one the candidate lacks fails', () => {
  const noDefects: GuardMetrics = { imageAuroc: null, pixelAuroc: null, aupro: null };
  expect(compareAccuracy(noDefects, { imageAuroc: 0.1, pixelAuroc: null, aupro: 0 }, 0.5)).toEqual({ passed: true });
  const comparison = compareAccuracy(reference, { ...reference, aupro: null }, 0.5);
  expect(comparison).toEqual({
    passed: false,
    failures: [{ metric: 'aupro', reference: 0.5124, candidate: null, dropPoints: null }],
  });
  expect(comparison.passed ? '' : describeDrop(comparison.failures[0]!)).toBe(
    'AUPRO was not measured (reference 0.5124)',
  );
});

test('a negative or non-finite tolerance is refused', () => {
  expect(() => compareAccuracy(reference, reference, -0.1)).toThrow(RangeError);
  expect(() => compareAccuracy(reference, reference, Number.NaN)).toThrow(RangeError);
});
