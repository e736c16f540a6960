/** Small helpers shared by the metrics tests. */

export const TOLERANCE = 1e-9;

export function expectClose(actual: number, expected: number, tolerance = TOLERANCE): void {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new Error(`expected ${expected} ± ${tolerance}, got ${actual} (difference ${actual - expected})`);
  }
}

/** Deterministic PRNG (mulberry32) returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Row-major image from rows of numbers. */
export function f32(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat());
}

export function u8(rows: number[][]): Uint8Array {
  return Uint8Array.from(rows.flat());
}

/**
 * Two 3×3 images worked through by hand in the tests. Image A's defect pixels (0,0), (1,0)
 * and (2,1) (row, column) form one region with 8-connectivity (the last touches the second
 * at a corner) and two regions with 4-connectivity; image B is good.
 */
export const HAND_WIDTH = 3;
export const HAND_HEIGHT = 3;
export const HAND_MAPS = [
  f32([
    [0.7, 0.1, 0.1],
    [0.3, 0.2, 0.1],
    [0.1, 0.9, 0.8],
  ]),
  f32([
    [0.6, 0.1, 0.1],
    [0.1, 0.5, 0.1],
    [0.1, 0.1, 0.4],
  ]),
];
export const HAND_MASKS = [
  u8([
    [255, 0, 0],
    [255, 0, 0],
    [0, 255, 0],
  ]),
  u8([
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ]),
];
