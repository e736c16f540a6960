import { downsampleCurve } from '../../src/metrics';

describe('downsampleCurve', () => {
  it('returns every point when there are few enough', () => {
    expect(downsampleCurve([0, 0.5, 1], [0, 1, 1], 3)).toEqual([
      { x: 0, y: 0 },
      { x: 0.5, y: 1 },
      { x: 1, y: 1 },
    ]);
  });

  it('keeps first and last points, at most maxPoints, nondecreasing x, detail on steep parts', () => {
    // A ROC-like curve: 1000 points rising almost vertically, then 1000 flat ones.
    const xs: number[] = [];
    const ys: number[] = [];
    for (let i = 0; i < 1000; i++) {
      xs.push(i * 1e-6);
      ys.push(i / 999);
    }
    for (let i = 1; i <= 1000; i++) {
      xs.push(i / 1000);
      ys.push(1);
    }
    for (const maxPoints of [2, 3, 10, 101]) {
      const points = downsampleCurve(xs, ys, maxPoints);
      expect(points.length).toBeLessThanOrEqual(maxPoints);
      expect(points[0]).toEqual({ x: 0, y: 0 });
      expect(points[points.length - 1]).toEqual({ x: 1, y: 1 });
      for (let i = 1; i < points.length; i++) expect(points[i].x).toBeGreaterThanOrEqual(points[i - 1].x);
    }
    const points = downsampleCurve(xs, ys, 101);
    expect(points.length).toBeGreaterThanOrEqual(99);
    const onRise = points.filter((point) => point.y < 1).length;
    expect(onRise).toBeGreaterThanOrEqual(45);
    expect(onRise).toBeLessThanOrEqual(55);
  });

  it('collapses a curve of identical points to its ends', () => {
    expect(downsampleCurve([1, 1, 1, 1], [2, 2, 2, 2], 3)).toEqual([
      { x: 1, y: 2 },
      { x: 1, y: 2 },
    ]);
  });

  it('rejects bad input', () => {
    expect(() => downsampleCurve([0, 1], [0], 5)).toThrow(RangeError);
    expect(() => downsampleCurve([0, 1], [0, 1], 1)).toThrow(RangeError);
    expect(() => downsampleCurve([0, 2, 1], [0, 1, 1], 5)).toThrow(RangeError);
  });
});
