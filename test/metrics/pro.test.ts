import { DEFAULT_PRO_LIMIT, aupro, evaluatePixelMetrics, proCurve, trapezoidUpTo } from '../../src/metrics';
import { HAND_HEIGHT, HAND_MAPS, HAND_MASKS, HAND_WIDTH, expectClose, f32, u8 } from './helpers';

// Worked example (see helpers): one 8-connected region of 3 pixels (scores 0.9, 0.7, 0.3,
// weight 1/3 each); 15 pixels outside it (6 in image A, 9 in the good image B). Descending:
//   score  0.9  0.8   0.7   0.6   0.5   0.4   0.3   0.2   0.1
//   FP      0    1     1     2     3     4     4     5    15
//   PRO    1/3  1/3   2/3   2/3   2/3   2/3    1     1     1
const HAND_FPR = [0, 0, 1 / 15, 1 / 15, 2 / 15, 3 / 15, 4 / 15, 4 / 15, 5 / 15, 1, 1];
const HAND_PRO = [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1, 1, 1];

function handAupro(limit: number): number {
  return aupro(HAND_MAPS, HAND_MASKS, HAND_WIDTH, HAND_HEIGHT, limit);
}

describe('proCurve', () => {
  it('keeps one point per distinct score between (0, 0) and (1, 1)', () => {
    const curve = proCurve(HAND_MAPS, HAND_MASKS, HAND_WIDTH, HAND_HEIGHT);
    expect(Array.from(curve.fpr)).toEqual(HAND_FPR);
    HAND_PRO.forEach((pro, i) => expectClose(curve.pro[i], pro, 1e-15));
    expect(Array.from(curve.thresholds)).toEqual(
      [Infinity, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, -Infinity].map(Math.fround),
    );
  });
});

describe('aupro', () => {
  it('integrates without interpolation when the limit is a curve point', () => {
    // 3/15 === 0.2 in float64. Area to 0.2: 1/15·1/3 + 2/15·2/3 = 5/45; / 0.2 = 5/9.
    expect(3 / 15).toBe(0.2);
    expectClose(handAupro(0.2), 5 / 9, 1e-15);
  });

  it('interpolates from the last point below the limit when it falls between points', () => {
    // Up to 4/15 the area is 7/45; the last point there is (4/15, 1) after the vertical step,
    // so the piece to 0.3 is 1 × (0.3 − 4/15) = 1/30. (17/90) / 0.3 = 17/27.
    expectClose(handAupro(0.3), 17 / 27, 1e-15);
    // Between (1/15, 2/3) and (2/15, 2/3): area 1/45 + 2/3 × (0.1 − 1/15) = 1/45 + 1/45.
    expectClose(handAupro(0.1), 2 / 45 / 0.1, 1e-15);
    expect(DEFAULT_PRO_LIMIT).toBe(0.3);
    expectClose(aupro(HAND_MAPS, HAND_MASKS, HAND_WIDTH, HAND_HEIGHT), 17 / 27, 1e-15);
  });

  it('reaches 1 over the full range minus the area left of the curve', () => {
    // Full-range area: 7/45 + (1 − 4/15) × 1 = 40/45.
    expectClose(handAupro(1), 40 / 45, 1e-15);
  });

  it('uses 8-connected regions: 4-connectivity would weigh the corner pixel differently', () => {
    // With 4-connectivity the top pixel (0.9) alone would be a region of area 1 and PRO
    // would start at 1/2 instead of 1/3; at limit 1/15 the area would be 1/30 not 1/45.
    expectClose(handAupro(1 / 15), 1 / 45 / (1 / 15), 1e-15);
  });

  it('counts every pixel of good images as a false-positive candidate', () => {
    // With the good image: area to 0.2 is 5/45, then from (3/15, 2/3) towards (4/15, 2/3)
    // adds 2/3 × 0.05 = 1/30; (13/90) / 0.25 = 26/45.
    expectClose(handAupro(0.25), 26 / 45, 1e-15);
    // Image A alone: negatives 0.8, 0.2 and four 0.1 → FP steps 1/6 (0.8), 2/6 (0.2), 1.
    // Area to 0.25: 1/6 × 1/3, then from (1/6, 1) towards (2/6, 1): 1 × (0.25 − 1/6);
    // (1/18 + 1/12) / 0.25 = 5/9.
    const imageAOnly = aupro(HAND_MAPS.slice(0, 1), HAND_MASKS.slice(0, 1), HAND_WIDTH, HAND_HEIGHT, 0.25);
    expectClose(imageAOnly, 5 / 9, 1e-15);
  });

  it('rejects a limit outside (0, 1], data without regions, and NaN', () => {
    expect(() => handAupro(0)).toThrow(RangeError);
    expect(() => handAupro(1.5)).toThrow(RangeError);
    expect(() => aupro(HAND_MAPS.slice(1), HAND_MASKS.slice(1), 3, 3)).toThrow(/region/);
    expect(() => aupro([f32([[1, NaN]])], [u8([[1, 0]])], 2, 1)).toThrow(/NaN/);
    expect(() => aupro(HAND_MAPS, HAND_MASKS, 9, 2)).toThrow(RangeError);
    expect(() => aupro([f32([[1, 2]])], [u8([[1, 1]])], 2, 1)).toThrow(/outside/);
  });
});

describe('evaluatePixelMetrics', () => {
  it('gives the same values as the separate functions from one pass', () => {
    const metrics = evaluatePixelMetrics(HAND_MAPS, HAND_MASKS, HAND_WIDTH, HAND_HEIGHT, { proLimit: 0.2 });
    expectClose(metrics.auroc, 40 / 45, 1e-15);
    expectClose(metrics.aupro, 5 / 9, 1e-15);
    expect(metrics.f1Max).toEqual({ f1: 2 / 3, threshold: Math.fround(0.7) });
    expect(metrics).toMatchObject({ proLimit: 0.2, regionCount: 1, positivePixels: 3, negativePixels: 15 });
  });
});

describe('trapezoidUpTo (MVTec rule)', () => {
  const xs = [0, 0.1, 0.1, 0.4, 1];
  const ys = [0, 0.2, 0.6, 0.9, 1];

  it('includes repeated x values at the limit and adds nothing past it', () => {
    expectClose(trapezoidUpTo(xs, ys, 0.1), 0.01, 1e-15);
  });

  it('interpolates from the last of repeated x values below the limit', () => {
    // 0.01 to x = 0.1, then from (0.1, 0.6) towards (0.4, 0.9): y(0.2) = 0.7 → 0.065.
    expectClose(trapezoidUpTo(xs, ys, 0.2), 0.01 + 0.065, 1e-15);
  });

  it('rejects a limit outside the curve and decreasing x', () => {
    expect(() => trapezoidUpTo([0, 0.5], [0, 1], 0.7)).toThrow(RangeError);
    expect(() => trapezoidUpTo([0.2, 0.5], [0, 1], 0.1)).toThrow(RangeError);
    expect(() => trapezoidUpTo([0, 0.5, 0.4, 1], [0, 1, 1, 1], 0.7)).toThrow(RangeError);
  });
});
