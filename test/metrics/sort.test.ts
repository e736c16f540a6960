import { argsortDescending, float32BitsToKey, keyToFloat32 } from '../../src/metrics/sort';
import { seededRandom } from './helpers';

const ORDERED = [-Infinity, -3.4e38, -1, -1e-45, -0, 0, 1e-45, 1.2e-38, 0.5, 1, 3.4e38, Infinity];

function bitsOf(value: number): number {
  return new Int32Array(Float32Array.of(value).buffer)[0];
}

describe('float32 keys', () => {
  it('order like the numbers and give -0 and +0 one key (read back as +0)', () => {
    const keys = ORDERED.map((value) => float32BitsToKey(bitsOf(value)) >>> 0);
    for (let i = 1; i < keys.length; i++) {
      if (ORDERED[i] === ORDERED[i - 1]) expect(keys[i]).toBe(keys[i - 1]);
      else expect(keys[i]).toBeGreaterThan(keys[i - 1]);
    }
  });

  it('convert back to the same float32 value', () => {
    for (const value of ORDERED) {
      expect(keyToFloat32(float32BitsToKey(bitsOf(value)))).toBe(Object.is(value, -0) ? 0 : Math.fround(value));
    }
  });
});

describe('argsortDescending', () => {
  it('sorts float32 and float64 values descending, ties in index order', () => {
    const values = [0.5, -0, 1, 0, -Infinity, 0.5, 1e-45, Infinity, -1];
    const expected = [7, 2, 0, 5, 6, 1, 3, 8, 4];
    expect(Array.from(argsortDescending(Float32Array.from(values)))).toEqual(expected);
    expect(Array.from(argsortDescending(Float64Array.from(values)))).toEqual(expected);
  });

  it('distinguishes float64 values that differ only in the low word', () => {
    const values = Float64Array.of(1, 1 + 2 ** -52, 1 - 2 ** -53, -1 - 2 ** -52, -1, 5e-324, -5e-324);
    expect(Array.from(argsortDescending(values))).toEqual([1, 0, 2, 5, 6, 4, 3]);
  });

  it('matches a comparison sort on random data with ties', () => {
    const random = seededRandom(11);
    for (const kind of ['f32', 'f64'] as const) {
      const raw = Array.from(
        { length: 5000 },
        () => (Math.round((random() - 0.4) * 200) / 16) * (random() < 0.1 ? 1e30 : 1),
      );
      const values = kind === 'f32' ? Float32Array.from(raw) : Float64Array.from(raw);
      const reference = Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b);
      expect(Array.from(argsortDescending(values))).toEqual(reference);
    }
  });

  it('rejects NaN', () => {
    expect(() => argsortDescending(Float32Array.of(1, NaN))).toThrow(RangeError);
    expect(() => argsortDescending(Float64Array.of(NaN))).toThrow(RangeError);
  });

  it('handles empty input', () => {
    expect(argsortDescending(new Float32Array(0))).toHaveLength(0);
  });
});
