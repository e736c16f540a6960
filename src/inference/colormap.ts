/**
 * The "Turbo" colormap (Google, 2019) as a 256-entry RGB lookup table.
 *
 * Turbo rather than jet: it keeps jet's familiar dark → blue → green → red reading for
 * inspectors, but without jet's false bands. The table is computed once from the degree-5
 * polynomial fit Google published with it (Apache-2.0) instead of pasting 768 numbers or
 * adding a plotting dependency for one table. The fit stays within about 0.06 of the
 * reference table over most of the range and is a little greyer at the two dark ends, which
 * does not matter for a heatmap.
 */

const RED = [0.13572138, 4.6153926, -42.66032258, 132.13108234, -152.94239396, 59.28637943] as const;
const GREEN = [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604] as const;
const BLUE = [0.1066733, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973] as const;

function polynomial(coefficients: readonly number[], x: number): number {
  let value = 0;
  for (let i = coefficients.length - 1; i >= 0; i--) value = value * x + coefficients[i];
  return value;
}

function toByte(value: number): number {
  return Math.round(Math.min(1, Math.max(0, value)) * 255);
}

/** Interleaved RGB, entry i (0..255) at [3i, 3i + 3). */
export const TURBO_LUT: Uint8Array = (() => {
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = i / 255;
    table[i * 3] = toByte(polynomial(RED, x));
    table[i * 3 + 1] = toByte(polynomial(GREEN, x));
    table[i * 3 + 2] = toByte(polynomial(BLUE, x));
  }
  return table;
})();
