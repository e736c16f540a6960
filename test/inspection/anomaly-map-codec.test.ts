import { decodeAnomalyMap, encodeAnomalyMap } from '../../src/formats/anomaly-map-codec';

test('a map round-trips within (max - min) / 131070 and keeps its extremes exactly', () => {
  const map = new Float32Array(64 * 48);
  for (let i = 0; i < map.length; i++) map[i] = 0.3 + Math.sin(i / 17) * 2.5 + (i % 7) * 1e-3;
  const encoded = encodeAnomalyMap(map);
  expect(encoded.bytes.length).toBe(map.length * 2);
  const decoded = decodeAnomalyMap(encoded);
  const tolerance = (encoded.max - encoded.min) / 131070 + 1e-6;
  let worst = 0;
  for (let i = 0; i < map.length; i++) worst = Math.max(worst, Math.abs((decoded[i] as number) - (map[i] as number)));
  expect(worst).toBeLessThanOrEqual(tolerance);
  expect(Math.min(...decoded)).toBeCloseTo(Math.min(...map), 6);
  expect(Math.max(...decoded)).toBeCloseTo(Math.max(...map), 6);
});

test('a constant map, an empty map and NaNs encode without dividing by zero', () => {
  expect([...decodeAnomalyMap(encodeAnomalyMap(new Float32Array([2.5, 2.5, 2.5])))]).toEqual([2.5, 2.5, 2.5]);
  expect(decodeAnomalyMap(encodeAnomalyMap(new Float32Array(0)))).toHaveLength(0);
  const withNaN = encodeAnomalyMap(new Float32Array([1, Number.NaN, 3]));
  expect([withNaN.min, withNaN.max]).toEqual([1, 3]);
  expect([...decodeAnomalyMap(withNaN)]).toEqual([1, 1, 3]);
});

test('bytes of odd length are refused', () => {
  expect(() => decodeAnomalyMap({ bytes: Buffer.alloc(3), min: 0, max: 1 })).toThrow(RangeError);
});
