import { imageF1Max, pixelF1Max } from '../../src/metrics';
import { HAND_MAPS, HAND_MASKS } from './helpers';

describe('imageF1Max', () => {
  it('finds the best threshold, predicting positive for score >= threshold', () => {
    // P = 2. t=3: TP 1, FP 0 → 2/3; t=2: 1/2; t=1: TP 2, FP 1 → 4/5.
    expect(imageF1Max(Float64Array.of(3, 2, 1), Uint8Array.of(1, 0, 1))).toEqual({ f1: 0.8, threshold: 1 });
  });

  it('treats equal scores as one threshold', () => {
    // t=0.5 predicts both tied items: TP 1, FP 1 → 2/4; t=0.1: 4/5.
    expect(imageF1Max(Float32Array.of(0.5, 0.5, 0.1), Uint8Array.of(1, 0, 1))).toEqual({
      f1: 0.8,
      threshold: Math.fround(0.1),
    });
    expect(imageF1Max(Float32Array.of(0.5, 0.5, 0.1), Uint8Array.of(1, 1, 0))).toEqual({ f1: 1, threshold: 0.5 });
  });

  it('keeps the highest threshold when two reach the same F1', () => {
    // t=4: 2/3; t=3: 2/4; t=2: 2/5; t=1: TP 2, FP 2 → 4/6 = 2/3 again.
    expect(imageF1Max(Float64Array.of(4, 3, 2, 1), Uint8Array.of(1, 0, 0, 1))).toEqual({ f1: 2 / 3, threshold: 4 });
  });

  it('needs at least one positive', () => {
    expect(() => imageF1Max(Float64Array.of(1, 2), Uint8Array.of(0, 0))).toThrow(RangeError);
  });
});

describe('pixelF1Max', () => {
  it('matches the worked example', () => {
    // P = 3; at 0.7: TP 2, FP 1 → 4/6, the best (0.3 gives TP 3, FP 4 → 6/10).
    expect(pixelF1Max(HAND_MAPS, HAND_MASKS)).toEqual({ f1: 2 / 3, threshold: Math.fround(0.7) });
  });
});
