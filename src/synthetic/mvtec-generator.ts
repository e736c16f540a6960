/**
 * Deterministic synthetic MVTec-AD-style dataset generator.
 *
 * The generation half of this module is pure: seeded PRNG, procedural textures, and defect
 * masks/painting on typed arrays. Only `writeMvtecCategory` does I/O (PNG encoding with sharp,
 * writing the MVTec AD folder layout).
 *
 * Bit-exact determinism: every number that reaches a pixel comes from integer hashing
 * (Math.imul, shifts, xor) or from IEEE-754 +, -, *, /, sqrt, floor and round, all of which are
 * exactly specified. Math.random, Math.sin/cos/exp/pow/atan2 are never used, because their results
 * are implementation-approximated and may differ between JavaScript engines and platforms.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

// Local aliases: in sandboxed realms (jest's vm contexts) every global lookup goes through an
// interceptor, and hot loops calling Math.* ran about 20 times slower there than these aliases.
const { abs, ceil, floor, imul, max, min, round, sqrt } = Math;
const INFINITY = Number.POSITIVE_INFINITY;

export const DEFECT_TYPES = ['scratch', 'hole', 'stain', 'fold', 'crack'] as const;
export type DefectType = (typeof DEFECT_TYPES)[number];
export type SampleLabel = 'good' | DefectType;
export type Split = 'train' | 'test';

export const TEXTURE_KINDS = ['weave', 'brushed-metal', 'wood-grain'] as const;
export type TextureKind = (typeof TEXTURE_KINDS)[number];

/** Smallest and largest share of the image a defective sample's mask may cover. */
export const MIN_MASK_FRACTION = 0.001;
export const MAX_MASK_FRACTION = 0.15;

export const MIN_IMAGE_SIZE = 32;
export const MAX_IMAGE_SIZE = 4096;
export const MAX_IMAGES_PER_FOLDER = 100_000;

type Rgb = readonly [number, number, number];

// ---------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  range(min: number, max: number): number;
  /** Uniform integer in [min, maxInclusive]. */
  int(min: number, maxInclusive: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
}

/**
 * mulberry32, hand-written instead of taken from a package: it is a few lines, and the dataset must
 * come out bit-identical on every platform, which a 32-bit integer generator built on Math.imul
 * guarantees (and Math.random, which cannot be seeded, does not).
 */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    range: (min, max) => min + (max - min) * next(),
    int: (min, maxInclusive) => min + floor(next() * (maxInclusive - min + 1)),
    chance: (probability) => next() < probability,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError('cannot pick from an empty list');
      return items[floor(next() * items.length)];
    },
  };
}

/** lowbias32 (Chris Wellons): a cheap 32-bit integer mixer with good avalanche. */
function mix32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Stable 32-bit hash of a list of strings and numbers (FNV-1a over tagged text, then mixed). */
export function hashValues(...parts: ReadonlyArray<string | number>): number {
  let hash = 0x811c9dc5;
  for (const part of parts) {
    // The type tag keeps 1 and "1" apart; the trailing separator keeps ("ab","c") and ("a","bc") apart.
    const text = `${typeof part === 'number' ? 'n' : 's'}${part}\u0000`;
    for (let i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = imul(hash, 0x01000193);
    }
  }
  return mix32(hash);
}

/** Hash of an integer lattice point, in [0, 1). */
function latticeUnit(seed: number, x: number, y: number): number {
  return mix32((imul(x | 0, 0x27d4eb2d) + imul(y | 0, 0x165667b1)) ^ seed) / 4294967296;
}

/** Smoothly interpolated lattice noise in [0, 1). */
function valueNoise(seed: number, x: number, y: number): number {
  const ix = floor(x);
  const iy = floor(y);
  const fx = x - ix;
  const fy = y - iy;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const topLeft = latticeUnit(seed, ix, iy);
  const topRight = latticeUnit(seed, ix + 1, iy);
  const bottomLeft = latticeUnit(seed, ix, iy + 1);
  const bottomRight = latticeUnit(seed, ix + 1, iy + 1);
  const top = topLeft + (topRight - topLeft) * sx;
  const bottom = bottomLeft + (bottomRight - bottomLeft) * sx;
  return top + (bottom - top) * sy;
}

function smoothstep(edge0: number, edge1: number, x: number): number {
  const t = x <= edge0 ? 0 : x >= edge1 ? 1 : (x - edge0) / (edge1 - edge0);
  return t * t * (3 - 2 * t);
}

/** A uniformly random direction, drawn by rejection so that no trigonometry is needed. */
function randomUnitVector(rng: Rng): [number, number] {
  for (;;) {
    const x = rng.range(-1, 1);
    const y = rng.range(-1, 1);
    const lengthSquared = x * x + y * y;
    if (lengthSquared > 0.01 && lengthSquared <= 1) {
      const length = sqrt(lengthSquared);
      return [x / length, y / length];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Surface textures
// ---------------------------------------------------------------------------------------------

/** What every image of one category shares: the material, its colours and weave. */
export interface CategoryStyle {
  readonly texture: TextureKind;
  readonly primary: Rgb;
  readonly secondary: Rgb;
  /** Thread pitch (weave) or ring spacing (wood), in pixels of a 256-pixel image. */
  readonly pitch256: number;
  readonly twill: boolean;
  /** Fraction of a thread pitch left as a dark gap between threads. */
  readonly threadGap: number;
  readonly detailSeed: number;
}

/** One image's instance of the category's surface: its own crop, rotation and lighting. */
export interface Surface {
  readonly style: CategoryStyle;
  readonly size: number;
  /** Multiplies every length in the texture so that it covers the same field at any `size`. */
  readonly scale: number;
  readonly pitch: number;
  readonly cos: number;
  readonly sin: number;
  readonly offsetU: number;
  readonly offsetV: number;
  readonly colourGain: Rgb;
  readonly lightGradientX: number;
  readonly lightGradientY: number;
  readonly lightBlotchAmplitude: number;
  readonly lightBlotchScale: number;
  /** Lattice of the low-frequency lighting noise, precomputed because its cells span many pixels. */
  readonly lightLattice: Float64Array;
  readonly lightLatticeWidth: number;
  readonly noiseSeed: number;
  readonly noiseAmplitude: number;
  readonly chromaNoiseAmplitude: number;
}

const WEAVE_PALETTES: ReadonlyArray<readonly [Rgb, Rgb]> = [
  [
    [0.2, 0.29, 0.47],
    [0.8, 0.78, 0.72],
  ], // denim: indigo warp, ecru weft
  [
    [0.62, 0.55, 0.4],
    [0.55, 0.48, 0.34],
  ], // khaki
  [
    [0.53, 0.53, 0.55],
    [0.45, 0.45, 0.47],
  ], // grey wool
  [
    [0.62, 0.2, 0.17],
    [0.5, 0.15, 0.13],
  ], // red
  [
    [0.28, 0.42, 0.3],
    [0.72, 0.74, 0.66],
  ], // green/cream
];
const METAL_PALETTES: ReadonlyArray<readonly [Rgb, Rgb]> = [
  [
    [0.72, 0.73, 0.75],
    [0.5, 0.51, 0.53],
  ], // aluminium
  [
    [0.78, 0.69, 0.55],
    [0.55, 0.47, 0.35],
  ], // brass
  [
    [0.6, 0.62, 0.66],
    [0.42, 0.43, 0.46],
  ], // steel
];
const WOOD_PALETTES: ReadonlyArray<readonly [Rgb, Rgb]> = [
  [
    [0.8, 0.62, 0.42],
    [0.55, 0.36, 0.2],
  ], // oak
  [
    [0.88, 0.76, 0.58],
    [0.66, 0.5, 0.32],
  ], // pine
  [
    [0.6, 0.38, 0.24],
    [0.38, 0.22, 0.13],
  ], // walnut
];

/** Picks the material from the category name, like MVTec's wood/metal/fabric-like categories. */
export function textureForCategory(category: string): TextureKind {
  const name = category.toLowerCase();
  if (/metal|steel|alumin|brush|plate/.test(name)) return 'brushed-metal';
  if (/wood|grain|timber|plank/.test(name)) return 'wood-grain';
  return 'weave';
}

export function createCategoryStyle(
  seed: number,
  category: string,
  texture: TextureKind = textureForCategory(category),
): CategoryStyle {
  const rng = createRng(hashValues('style', seed, category));
  const palettes = texture === 'weave' ? WEAVE_PALETTES : texture === 'brushed-metal' ? METAL_PALETTES : WOOD_PALETTES;
  const [primary, secondary] = rng.pick(palettes);
  const jitter = (colour: Rgb): Rgb => [
    colour[0] * rng.range(0.95, 1.05),
    colour[1] * rng.range(0.95, 1.05),
    colour[2] * rng.range(0.95, 1.05),
  ];
  return {
    texture,
    primary: jitter(primary),
    secondary: jitter(secondary),
    pitch256: texture === 'wood-grain' ? rng.range(14, 22) : rng.range(10, 13.5),
    twill: rng.chance(0.5),
    threadGap: rng.range(0.1, 0.18),
    detailSeed: mix32(rng.int(0, 0x7fffffff)),
  };
}

export function createSurface(style: CategoryStyle, size: number, rng: Rng): Surface {
  const scale = size / 256;
  // Rotation of at most ~4.5 degrees, from the direction (1, tan) so that no trigonometry is needed.
  const tangent = rng.range(-0.08, 0.08);
  const norm = sqrt(1 + tangent * tangent);
  const pitch = max(4, style.pitch256 * scale) * rng.range(0.96, 1.04);
  const lightGain = rng.range(0.92, 1.06);
  const lightBlotchScale = size * rng.range(0.3, 0.6);
  const lightSeed = mix32(rng.int(0, 0x7fffffff));
  const lightLatticeWidth = floor(size / lightBlotchScale) + 2;
  const lightLattice = new Float64Array(lightLatticeWidth * lightLatticeWidth);
  for (let j = 0; j < lightLatticeWidth; j++) {
    for (let i = 0; i < lightLatticeWidth; i++) lightLattice[j * lightLatticeWidth + i] = latticeUnit(lightSeed, i, j);
  }
  return {
    style,
    size,
    scale,
    pitch,
    cos: 1 / norm,
    sin: tangent / norm,
    offsetU: rng.range(0, 4096),
    offsetV: rng.range(0, 4096),
    colourGain: [
      lightGain * rng.range(0.97, 1.03),
      lightGain * rng.range(0.97, 1.03),
      lightGain * rng.range(0.97, 1.03),
    ],
    lightGradientX: rng.range(-0.14, 0.14),
    lightGradientY: rng.range(-0.14, 0.14),
    lightBlotchAmplitude: rng.range(0.03, 0.09),
    lightBlotchScale,
    lightLattice,
    lightLatticeWidth,
    noiseSeed: mix32(rng.int(0, 0x7fffffff)),
    noiseAmplitude: rng.range(4, 9),
    chromaNoiseAmplitude: rng.range(1, 3),
  };
}

function weaveAlbedo(surface: Surface, u: number, v: number, out: Float64Array): void {
  const style = surface.style;
  const pitch = surface.pitch;
  const a = u / pitch;
  const b = v / pitch;
  const warpIndex = floor(a);
  const weftIndex = floor(b);
  const warpFraction = a - warpIndex;
  const weftFraction = b - weftIndex;
  const warpOnTop = style.twill ? (((warpIndex - weftIndex) % 3) + 3) % 3 !== 0 : ((warpIndex + weftIndex) & 1) === 0;
  const across = warpOnTop ? warpFraction : weftFraction;
  const along = warpOnTop ? weftFraction : warpFraction;
  const thread = warpOnTop ? warpIndex : weftIndex;
  const alongPixels = warpOnTop ? v : u;
  const colour = warpOnTop ? style.primary : style.secondary;
  const threadSeed = style.detailSeed + (warpOnTop ? 0 : 0x9e3779b9);

  const gap = style.threadGap;
  const inThread = (across - gap * 0.5) / (1 - gap);
  let luminance: number;
  if (inThread <= 0 || inThread >= 1) {
    luminance = 0.3;
  } else {
    const roundness = 4 * inThread * (1 - inThread);
    // The visible thread dips where it passes under the crossing one.
    const bend = 4 * along * (1 - along);
    luminance = 0.4 + 0.52 * roundness * (0.76 + 0.24 * bend);
  }
  const threadGain = 0.9 + 0.2 * latticeUnit(threadSeed, thread, 0);
  const fibres = 0.88 + 0.24 * valueNoise(threadSeed + 7, thread * 3 + inThread * 4, alongPixels / (pitch * 0.2));
  luminance *= threadGain * fibres;
  out[0] = colour[0] * luminance;
  out[1] = colour[1] * luminance;
  out[2] = colour[2] * luminance;
}

function brushedMetalAlbedo(surface: Surface, u: number, v: number, out: Float64Array): void {
  const style = surface.style;
  const seed = style.detailSeed;
  const k = surface.scale;
  // Strongly anisotropic noise: long correlation along the brushing direction (u), almost none across it.
  const streaks =
    0.5 * valueNoise(seed, u / (90 * k), v / 0.9) +
    0.3 * valueNoise(seed + 1, u / (240 * k), v / (3 * k)) +
    0.2 * valueNoise(seed + 2, u / (25 * k), v / 0.6);
  const sheen = valueNoise(seed + 3, u / (70 * k), v / (70 * k));
  let luminance = 0.82 + 0.36 * (streaks - 0.5) + 0.08 * (sheen - 0.5);
  if (latticeUnit(seed + 4, floor(u), floor(v)) > 0.9985) luminance *= 0.62;
  const tone = 0.15 * sheen;
  out[0] = (style.primary[0] * (1 - tone) + style.secondary[0] * tone) * luminance;
  out[1] = (style.primary[1] * (1 - tone) + style.secondary[1] * tone) * luminance;
  out[2] = (style.primary[2] * (1 - tone) + style.secondary[2] * tone) * luminance;
}

function woodGrainAlbedo(surface: Surface, u: number, v: number, out: Float64Array): void {
  const style = surface.style;
  const seed = style.detailSeed;
  const k = surface.scale;
  const distortion =
    2.4 * valueNoise(seed, u / (110 * k), v / (45 * k)) + 0.4 * valueNoise(seed + 1, u / (30 * k), v / (9 * k));
  const ring = v / surface.pitch + distortion;
  const phase = ring - floor(ring);
  const lateWood = smoothstep(0.45, 0.75, phase) * (1 - smoothstep(0.86, 1, phase));
  const pores = valueNoise(seed + 2, u / (14 * k), v / 0.8);
  let mix = 0.75 * lateWood + 0.3 * (pores - 0.4);
  mix = mix < 0 ? 0 : mix > 1 ? 1 : mix;
  out[0] = style.primary[0] + (style.secondary[0] - style.primary[0]) * mix;
  out[1] = style.primary[1] + (style.secondary[1] - style.primary[1]) * mix;
  out[2] = style.primary[2] + (style.secondary[2] - style.primary[2]) * mix;
}

/** Value noise over the precomputed lattice; same formula as valueNoise. */
function lightBlotch(surface: Surface, x: number, y: number): number {
  const lx = x / surface.lightBlotchScale;
  const ly = y / surface.lightBlotchScale;
  const ix = floor(lx);
  const iy = floor(ly);
  const fx = lx - ix;
  const fy = ly - iy;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const lattice = surface.lightLattice;
  const row = iy * surface.lightLatticeWidth + ix;
  const below = row + surface.lightLatticeWidth;
  const top = lattice[row] + (lattice[row + 1] - lattice[row]) * sx;
  const bottom = lattice[below] + (lattice[below + 1] - lattice[below]) * sx;
  return top + (bottom - top) * sy;
}

/**
 * Colour (0–255, unrounded) of pixel (x, y) when the material seen there is the one at
 * (sampleX, sampleY), lit with an extra `shade` factor. Lighting and sensor noise stay tied to the
 * pixel; only the material moves, which is what a fold needs.
 */
export function shadeSurfaceAt(
  surface: Surface,
  x: number,
  y: number,
  sampleX: number,
  sampleY: number,
  shade: number,
  out: Float64Array,
): void {
  const half = surface.size * 0.5;
  const dx = sampleX - half;
  const dy = sampleY - half;
  const u = dx * surface.cos + dy * surface.sin + surface.offsetU;
  const v = dy * surface.cos - dx * surface.sin + surface.offsetV;
  switch (surface.style.texture) {
    case 'weave':
      weaveAlbedo(surface, u, v, out);
      break;
    case 'brushed-metal':
      brushedMetalAlbedo(surface, u, v, out);
      break;
    case 'wood-grain':
      woodGrainAlbedo(surface, u, v, out);
      break;
  }
  const size = surface.size;
  const light =
    (1 +
      surface.lightGradientX * (x / size - 0.5) +
      surface.lightGradientY * (y / size - 0.5) +
      surface.lightBlotchAmplitude * (2 * lightBlotch(surface, x, y) - 1)) *
    shade *
    255;
  // Sensor noise from one 32-bit hash: two 8-bit uniforms summed (triangular luminance grain), then
  // three 5-bit uniforms for the per-channel chroma noise.
  const bits = mix32((imul(x, 0x27d4eb2d) + imul(y, 0x165667b1)) ^ surface.noiseSeed);
  const grain = surface.noiseAmplitude * (((bits & 0xff) + ((bits >>> 8) & 0xff)) / 255 - 1);
  const chroma = surface.chromaNoiseAmplitude / 31;
  out[0] = out[0] * surface.colourGain[0] * light + grain + chroma * (((bits >>> 16) & 31) - 15.5);
  out[1] = out[1] * surface.colourGain[1] * light + grain + chroma * (((bits >>> 21) & 31) - 15.5);
  out[2] = out[2] * surface.colourGain[2] * light + grain + chroma * (((bits >>> 26) & 31) - 15.5);
}

function toByte(value: number): number {
  return value <= 0 ? 0 : value >= 255 ? 255 : round(value);
}

/** Renders the defect-free surface as interleaved RGB bytes, row-major, size × size × 3. */
export function renderSurface(surface: Surface): Uint8Array {
  const size = surface.size;
  const image = new Uint8Array(size * size * 3);
  const colour = new Float64Array(3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      shadeSurfaceAt(surface, x, y, x, y, 1, colour);
      const offset = (y * size + x) * 3;
      image[offset] = toByte(colour[0]);
      image[offset + 1] = toByte(colour[1]);
      image[offset + 2] = toByte(colour[2]);
    }
  }
  return image;
}

// ---------------------------------------------------------------------------------------------
// Defects: each is a shape (which pixels) plus a painter (what those pixels become)
// ---------------------------------------------------------------------------------------------

/** Pixel rectangle [x0, x1) × [y0, y1), clipped to the image. */
interface PixelBounds {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

interface DefectRegion {
  readonly bounds: PixelBounds;
  /** Whether integer pixel (x, y) belongs to the defect. */
  covers(x: number, y: number): boolean;
  /** Defective colour (0–255, unrounded) of a covered pixel whose defect-free colour is `clean`. */
  paint(x: number, y: number, clean: Float64Array, out: Float64Array): void;
  /** Whether the defect mostly brightens (+1) or darkens (−1); used to force a visible change. */
  readonly direction: 1 | -1;
}

function clippedBounds(minX: number, minY: number, maxX: number, maxY: number, size: number): PixelBounds {
  return {
    x0: max(0, floor(minX)),
    y0: max(0, floor(minY)),
    x1: min(size, ceil(maxX) + 1),
    y1: min(size, ceil(maxY) + 1),
  };
}

/** Thin, long, straight or gently curved line; bright (reflective) or dark. */
function createScratch(rng: Rng, surface: Surface): DefectRegion {
  const size = surface.size;
  const startX = rng.range(0.1, 0.9) * size;
  const startY = rng.range(0.1, 0.9) * size;
  const [directionX, directionY] = randomUnitVector(rng);
  const length = rng.range(0.2, 0.75) * size;
  const bend = rng.chance(0.35) ? 0 : rng.range(-0.35, 0.35) * length;
  const endX = startX + directionX * length;
  const endY = startY + directionY * length;
  const controlX = (startX + endX) / 2 - directionY * bend;
  const controlY = (startY + endY) / 2 + directionX * bend;
  const segments = 32;
  const points = new Float64Array((segments + 1) * 2);
  let minX = INFINITY;
  let minY = INFINITY;
  let maxX = -INFINITY;
  let maxY = -INFINITY;
  for (let i = 0; i <= segments; i++) {
    const t = i / segments;
    const s = 1 - t;
    const px = s * s * startX + 2 * s * t * controlX + t * t * endX;
    const py = s * s * startY + 2 * s * t * controlY + t * t * endY;
    points[i * 2] = px;
    points[i * 2 + 1] = py;
    minX = min(minX, px);
    minY = min(minY, py);
    maxX = max(maxX, px);
    maxY = max(maxY, py);
  }
  const baseHalfWidth = rng.range(0.75, 1.9) * max(1, surface.scale);
  const brighter = rng.chance(0.65);
  const strength = rng.range(0.35, 0.75);

  let nearestDistance = 0;
  let nearestHalfWidth = 0;
  const measure = (x: number, y: number): void => {
    const px = x + 0.5;
    const py = y + 0.5;
    let best = INFINITY;
    let bestT = 0;
    for (let i = 0; i < segments; i++) {
      const ax = points[i * 2];
      const ay = points[i * 2 + 1];
      const bx = points[i * 2 + 2] - ax;
      const by = points[i * 2 + 3] - ay;
      const lengthSquared = bx * bx + by * by;
      let projection = lengthSquared > 0 ? ((px - ax) * bx + (py - ay) * by) / lengthSquared : 0;
      projection = projection < 0 ? 0 : projection > 1 ? 1 : projection;
      const ex = px - ax - projection * bx;
      const ey = py - ay - projection * by;
      const distanceSquared = ex * ex + ey * ey;
      if (distanceSquared < best) {
        best = distanceSquared;
        bestT = (i + projection) / segments;
      }
    }
    nearestDistance = sqrt(best);
    // Tapered ends, but never thinner than half a pixel so the line stays 8-connected.
    const taper = min(1, 0.45 + 3 * min(bestT, 1 - bestT));
    nearestHalfWidth = max(0.55, baseHalfWidth * taper);
  };

  const margin = baseHalfWidth + 1;
  return {
    bounds: clippedBounds(minX - margin, minY - margin, maxX + margin, maxY + margin, size),
    direction: brighter ? 1 : -1,
    covers(x, y) {
      measure(x, y);
      return nearestDistance <= nearestHalfWidth;
    },
    paint(x, y, clean, out) {
      measure(x, y);
      const relative = nearestDistance / nearestHalfWidth;
      const profile = strength * (1 - 0.6 * relative * relative);
      for (let c = 0; c < 3; c++) out[c] = brighter ? clean[c] + (255 - clean[c]) * profile : clean[c] * (1 - profile);
    },
  };
}

/** Dark elliptical hole with a ragged edge, surrounded by a shadowed, frayed rim. */
function createHole(rng: Rng, surface: Surface): DefectRegion {
  const size = surface.size;
  const centreX = rng.range(0.12, 0.88) * size;
  const centreY = rng.range(0.12, 0.88) * size;
  const radiusDraw = rng.next();
  const semiMajor = size * (0.014 + 0.11 * radiusDraw * radiusDraw);
  const semiMinor = semiMajor * rng.range(0.6, 1);
  const [axisX, axisY] = randomUnitVector(rng);
  // Ragged edge: 1 + Σ amplitude_k · cos(kθ − φ_k) for k = 2, 3, 5, evaluated with angle-addition
  // recurrences on the unit direction instead of trigonometric functions.
  const harmonics = [2, 3, 5].map((order) => {
    const [phaseCos, phaseSin] = randomUnitVector(rng);
    return { order, amplitude: rng.range(0, 0.08), phaseCos, phaseSin };
  });
  const rimOuter = rng.range(1.18, 1.4);
  const frayingSeed = mix32(rng.int(0, 0x7fffffff));

  let edgeRelative = 0; // radius relative to the ragged edge: < 1 is inside the hole
  let localY = 0; // −1 at the top of the hole, +1 at the bottom (along the minor axis)
  const measure = (x: number, y: number): void => {
    const dx = x + 0.5 - centreX;
    const dy = y + 0.5 - centreY;
    const nx = (dx * axisX + dy * axisY) / semiMajor;
    const ny = (dy * axisX - dx * axisY) / semiMinor;
    const radius = sqrt(nx * nx + ny * ny);
    let edge = 1;
    if (radius > 0) {
      const cos1 = nx / radius;
      const sin1 = ny / radius;
      let cosK = cos1;
      let sinK = sin1;
      for (let order = 2; order <= 5; order++) {
        const nextCos = cosK * cos1 - sinK * sin1;
        sinK = sinK * cos1 + cosK * sin1;
        cosK = nextCos;
        for (const harmonic of harmonics) {
          if (harmonic.order === order)
            edge += harmonic.amplitude * (cosK * harmonic.phaseCos + sinK * harmonic.phaseSin);
        }
      }
    }
    edgeRelative = radius / edge;
    localY = ny;
  };

  const reach = semiMajor * rimOuter * 1.3 + 1;
  return {
    bounds: clippedBounds(centreX - reach, centreY - reach, centreX + reach, centreY + reach, size),
    direction: -1,
    covers(x, y) {
      measure(x, y);
      return edgeRelative <= rimOuter;
    },
    paint(x, y, clean, out) {
      measure(x, y);
      if (edgeRelative < 1) {
        // Looking through the hole: near-black, slightly lit towards one side.
        const glow = 8 + 5 * localY;
        for (let c = 0; c < 3; c++) out[c] = 10 + glow + 0.1 * clean[c] * edgeRelative;
      } else {
        const outward = (edgeRelative - 1) / (rimOuter - 1);
        const shadow = 0.45 + 0.5 * outward;
        const fibre = latticeUnit(frayingSeed, x, y) > 0.82 ? 45 * (1 - outward) : 0;
        for (let c = 0; c < 3; c++) out[c] = clean[c] * shadow + fibre;
      }
    },
  };
}

const STAIN_TINTS: readonly Rgb[] = [
  [0.86, 0.64, 0.42], // coffee / rust
  [0.64, 0.62, 0.68], // oil
  [0.78, 0.88, 0.6], // green
  [0.62, 0.72, 0.98], // ink
  [1.22, 1.18, 1.08], // bleach
];

/** Soft-edged, low-contrast coloured blob made of a few overlapping ellipses. */
function createStain(rng: Rng, surface: Surface): DefectRegion {
  const size = surface.size;
  const centreX = rng.range(0.15, 0.85) * size;
  const centreY = rng.range(0.15, 0.85) * size;
  const radius = size * (0.035 + 0.17 * rng.next());
  interface Lobe {
    readonly x: number;
    readonly y: number;
    readonly axisX: number;
    readonly axisY: number;
    readonly inverseMajor: number;
    readonly inverseMinor: number;
  }
  const makeLobe = (x: number, y: number, major: number, minor: number): Lobe => {
    const [axisX, axisY] = randomUnitVector(rng);
    return { x, y, axisX, axisY, inverseMajor: 1 / major, inverseMinor: 1 / minor };
  };
  const lobes: Lobe[] = [makeLobe(centreX, centreY, radius * rng.range(0.7, 1), radius * rng.range(0.45, 0.9))];
  const extraLobes = rng.int(0, 3);
  for (let i = 0; i < extraLobes; i++) {
    // Centres within 0.6 r of a main ellipse at least 0.45 r wide, lobes at least 0.3 r: they overlap.
    const [offsetX, offsetY] = randomUnitVector(rng);
    const distance = radius * rng.range(0.2, 0.6);
    lobes.push(
      makeLobe(
        centreX + offsetX * distance,
        centreY + offsetY * distance,
        radius * rng.range(0.3, 0.6),
        radius * rng.range(0.3, 0.6),
      ),
    );
  }
  const tint = rng.pick(STAIN_TINTS);
  const strength = rng.range(0.28, 0.55);
  const wobbleSeed = mix32(rng.int(0, 0x7fffffff));
  const wobbleScale = radius * 0.35;

  const field = (x: number, y: number): number => {
    const px = x + 0.5;
    const py = y + 0.5;
    let best = -INFINITY;
    for (const lobe of lobes) {
      const dx = px - lobe.x;
      const dy = py - lobe.y;
      const along = (dx * lobe.axisX + dy * lobe.axisY) * lobe.inverseMajor;
      const across = (dy * lobe.axisX - dx * lobe.axisY) * lobe.inverseMinor;
      best = max(best, 1 - along * along - across * across);
    }
    return best + 0.1 * (valueNoise(wobbleSeed, px / wobbleScale, py / wobbleScale) - 0.5);
  };

  const reach = radius * 1.7 + 1;
  return {
    bounds: clippedBounds(centreX - reach, centreY - reach, centreX + reach, centreY + reach, size),
    direction: tint[0] + tint[1] + tint[2] >= 3 ? 1 : -1,
    covers(x, y) {
      return field(x, y) > 0;
    },
    paint(x, y, clean, out) {
      const ramp = min(1, field(x, y) / 0.3);
      const alpha = strength * (0.3 + 0.7 * ramp * ramp * (3 - 2 * ramp));
      for (let c = 0; c < 3; c++) out[c] = clean[c] * (1 + (tint[c] - 1) * alpha);
    },
  };
}

/** Lens-shaped band where the material is pushed together, with a crease shadow and a lit flank. */
function createFold(rng: Rng, surface: Surface): DefectRegion {
  const size = surface.size;
  const centreX = rng.range(0.2, 0.8) * size;
  const centreY = rng.range(0.2, 0.8) * size;
  const [alongX, alongY] = randomUnitVector(rng);
  const acrossX = -alongY;
  const acrossY = alongX;
  const length = rng.range(0.35, 1.1) * size;
  const halfWidth = rng.range(0.015, 0.065) * size;
  const compression = rng.range(1.6, 2.6);
  const shear = halfWidth * rng.range(-1.5, 1.5);
  const lightSide = rng.chance(0.5) ? 1 : -1;

  let relativeAcross = 0; // −1 … 1 across the band
  let across = 0;
  let inside = false;
  const measure = (x: number, y: number): void => {
    const dx = x + 0.5 - centreX;
    const dy = y + 0.5 - centreY;
    const alongDistance = (dx * alongX + dy * alongY) / (length * 0.5);
    across = dx * acrossX + dy * acrossY;
    inside = false;
    if (alongDistance <= -1 || alongDistance >= 1) return;
    const width = halfWidth * sqrt(1 - alongDistance * alongDistance);
    if (width < 0.6 || across <= -width || across >= width) return;
    inside = true;
    relativeAcross = across / width;
  };

  const endX = abs(alongX) * length * 0.5 + halfWidth;
  const endY = abs(alongY) * length * 0.5 + halfWidth;
  return {
    bounds: clippedBounds(centreX - endX, centreY - endY, centreX + endX, centreY + endY, size),
    direction: -1,
    covers(x, y) {
      measure(x, y);
      return inside;
    },
    paint(x, y, _clean, out) {
      measure(x, y);
      const q = relativeAcross;
      const displacement = across * (compression - 1);
      const slide = shear * (1 - q * q);
      const sampleX = x + acrossX * displacement + alongX * slide;
      const sampleY = y + acrossY * displacement + alongY * slide;
      const crease = 1 - abs(q);
      const crease2 = crease * crease;
      const shade = 1 + 0.28 * lightSide * q - 0.35 * crease2 * crease2;
      shadeSurfaceAt(surface, x, y, sampleX, sampleY, shade, out);
    },
  };
}

/**
 * Chain of equal squares, each one step right and one step up or down from the previous, so that
 * consecutive squares touch only at a corner: one region under 8-connectivity, several under
 * 4-connectivity (the case region-based metrics such as AUPRO must get right). Two squares make
 * a checker-style pair.
 */
function createCrack(rng: Rng, surface: Surface): DefectRegion {
  const size = surface.size;
  const side = rng.int(3, max(3, round(size * 0.035)));
  let count = rng.int(2, 8);
  while (count > 2 && count * side > size * 0.8) count--;
  const rows: number[] = [0];
  for (let i = 1; i < count; i++) rows.push(rows[i - 1] + (rng.chance(0.5) ? 1 : -1));
  const minRow = min(...rows);
  const maxRow = max(...rows);
  let width = count * side;
  let height = (maxRow - minRow + 1) * side;
  const flipX = rng.chance(0.5);
  const flipY = rng.chance(0.5);
  const transpose = rng.chance(0.5);
  const corners: Array<[number, number]> = rows.map((row, column) => {
    let x = column * side;
    let y = (row - minRow) * side;
    if (flipX) x = width - side - x;
    if (flipY) y = height - side - y;
    return transpose ? [y, x] : [x, y];
  });
  if (transpose) [width, height] = [height, width];
  const originX = rng.int(0, max(0, size - width));
  const originY = rng.int(0, max(0, size - height));
  const squares = corners.map(([x, y]) => ({ x: originX + x, y: originY + y, darkness: rng.range(0.2, 0.5) }));
  const textureSeed = mix32(rng.int(0, 0x7fffffff));

  const squareAt = (x: number, y: number): number => {
    for (let i = 0; i < squares.length; i++) {
      const square = squares[i];
      if (x >= square.x && x < square.x + side && y >= square.y && y < square.y + side) return i;
    }
    return -1;
  };

  return {
    bounds: clippedBounds(originX, originY, originX + width - 1, originY + height - 1, size),
    direction: -1,
    covers(x, y) {
      return squareAt(x, y) >= 0;
    },
    paint(x, y, clean, out) {
      const square = squares[squareAt(x, y)];
      const factor = square.darkness * (0.85 + 0.3 * latticeUnit(textureSeed, x, y));
      for (let c = 0; c < 3; c++) out[c] = clean[c] * factor;
    },
  };
}

const DEFECT_FACTORIES: Readonly<Record<DefectType, (rng: Rng, surface: Surface) => DefectRegion>> = {
  scratch: createScratch,
  hole: createHole,
  stain: createStain,
  fold: createFold,
  crack: createCrack,
};

/** Flat indices (y · size + x) of the pixels a region covers. */
function rasterizeRegion(region: DefectRegion, size: number): Int32Array {
  const { x0, y0, x1, y1 } = region.bounds;
  const covered: number[] = [];
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      if (region.covers(x, y)) covered.push(y * size + x);
    }
  }
  return Int32Array.from(covered);
}

/** Whether any pixel lies within two pixels (Chebyshev) of the mask, which would merge regions. */
function comesNearMask(mask: Uint8Array, size: number, pixels: Int32Array): boolean {
  for (const index of pixels) {
    const x = index % size;
    const y = (index - x) / size;
    for (let ny = max(0, y - 2); ny <= min(size - 1, y + 2); ny++) {
      for (let nx = max(0, x - 2); nx <= min(size - 1, x + 2); nx++) {
        if (mask[ny * size + nx] !== 0) return true;
      }
    }
  }
  return false;
}

/** Smallest per-channel change a defect pixel gets, so the mask is exactly the changed pixels. */
const MIN_VISIBLE_CHANGE = 3;

function drawRegionCount(rng: Rng): number {
  const draw = rng.next();
  return draw < 0.6 ? 1 : draw < 0.88 ? 2 : 3;
}

export interface DefectResult {
  readonly image: Uint8Array;
  /** size × size, 255 where the defect changed the image, 0 elsewhere. */
  readonly mask: Uint8Array;
  readonly regionsPlaced: number;
}

/**
 * Adds 1–3 separate defects of one type to a clean image. The mask is rasterised first and only
 * its pixels are painted; every masked pixel is guaranteed to differ from the clean image.
 */
export function applyDefect(clean: Uint8Array, surface: Surface, defect: DefectType, rng: Rng): DefectResult {
  const size = surface.size;
  const factory = DEFECT_FACTORIES[defect];
  const totalPixels = size * size;
  const maxAttempts = 64;
  let mask = new Uint8Array(totalPixels);
  let placed: Array<{ region: DefectRegion; pixels: Int32Array }> = [];
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    mask = new Uint8Array(totalPixels);
    placed = [];
    let area = 0;
    const wanted = drawRegionCount(rng);
    for (let regionIndex = 0; regionIndex < wanted; regionIndex++) {
      for (let placementTry = 0; placementTry < 12; placementTry++) {
        const region = factory(rng, surface);
        const pixels = rasterizeRegion(region, size);
        if (pixels.length === 0 || comesNearMask(mask, size, pixels)) continue;
        for (const index of pixels) mask[index] = 255;
        area += pixels.length;
        placed.push({ region, pixels });
        break;
      }
    }
    const fraction = area / totalPixels;
    if (placed.length > 0 && fraction >= MIN_MASK_FRACTION && fraction <= MAX_MASK_FRACTION) break;
    if (attempt === maxAttempts - 1 && placed.length === 0) {
      throw new Error(`could not place a ${defect} defect on a ${size}×${size} image`);
    }
  }

  const image = clean.slice();
  const cleanColour = new Float64Array(3);
  const painted = new Float64Array(3);
  for (const { region, pixels } of placed) {
    for (const index of pixels) {
      const x = index % size;
      const y = (index - x) / size;
      const offset = index * 3;
      cleanColour[0] = clean[offset];
      cleanColour[1] = clean[offset + 1];
      cleanColour[2] = clean[offset + 2];
      region.paint(x, y, cleanColour, painted);
      let red = toByte(painted[0]);
      let green = toByte(painted[1]);
      let blue = toByte(painted[2]);
      const largestChange = max(
        abs(red - clean[offset]),
        abs(green - clean[offset + 1]),
        abs(blue - clean[offset + 2]),
      );
      if (largestChange < MIN_VISIBLE_CHANGE) {
        // Push the way the defect goes, or the other way when that direction is saturated.
        const luminance = (clean[offset] + clean[offset + 1] + clean[offset + 2]) / 3;
        const direction =
          region.direction === 1
            ? luminance > 255 - MIN_VISIBLE_CHANGE
              ? -1
              : 1
            : luminance < MIN_VISIBLE_CHANGE
              ? 1
              : -1;
        red = toByte(clean[offset] + direction * MIN_VISIBLE_CHANGE);
        green = toByte(clean[offset + 1] + direction * MIN_VISIBLE_CHANGE);
        blue = toByte(clean[offset + 2] + direction * MIN_VISIBLE_CHANGE);
      }
      image[offset] = red;
      image[offset + 1] = green;
      image[offset + 2] = blue;
    }
  }
  return { image, mask, regionsPlaced: placed.length };
}

// ---------------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------------

export interface SampleSpec {
  readonly seed: number;
  readonly category: string;
  readonly size: number;
  readonly split: Split;
  readonly label: SampleLabel;
  readonly index: number;
  /** Defaults to textureForCategory(category). */
  readonly texture?: TextureKind;
}

export interface GeneratedSample {
  readonly size: number;
  /** Interleaved RGB, row-major, size × size × 3. */
  readonly image: Uint8Array;
  /** The same image before the defect was painted (equal to `image` for good samples). */
  readonly cleanImage: Uint8Array;
  /** size × size of 0/255, or null for good samples. */
  readonly mask: Uint8Array | null;
}

/**
 * One image, a pure function of its spec. Each image has its own PRNG stream keyed by
 * (seed, category, split, label, index), so changing one folder's count leaves the others' images
 * unchanged.
 */
export function generateSample(
  spec: SampleSpec,
  style: CategoryStyle = createCategoryStyle(spec.seed, spec.category, spec.texture),
): GeneratedSample {
  const rng = createRng(hashValues('sample', spec.seed, spec.category, spec.split, spec.label, spec.index));
  const surface = createSurface(style, spec.size, rng);
  const cleanImage = renderSurface(surface);
  if (spec.label === 'good') return { size: spec.size, image: cleanImage, cleanImage, mask: null };
  const { image, mask } = applyDefect(cleanImage, surface, spec.label, rng);
  return { size: spec.size, image, cleanImage, mask };
}

/** Number of connected regions of non-zero mask pixels, with 4- or 8-neighbourhoods. */
export function countConnectedRegions(mask: Uint8Array, size: number, connectivity: 4 | 8): number {
  const visited = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  let regions = 0;
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] === 0 || visited[start] === 1) continue;
    regions++;
    let top = 0;
    stack[top++] = start;
    visited[start] = 1;
    while (top > 0) {
      const index = stack[--top];
      const x = index % size;
      const y = (index - x) / size;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          if ((dx === 0 && dy === 0) || (connectivity === 4 && dx !== 0 && dy !== 0)) continue;
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= size || ny >= size) continue;
          const neighbour = ny * size + nx;
          if (mask[neighbour] !== 0 && visited[neighbour] === 0) {
            visited[neighbour] = 1;
            stack[top++] = neighbour;
          }
        }
      }
    }
  }
  return regions;
}

// ---------------------------------------------------------------------------------------------
// Writing an MVTec AD category to disk
// ---------------------------------------------------------------------------------------------

export interface WriteMvtecCategoryOptions {
  /** Parent folder; the category is written to `<outDir>/<category>`. */
  readonly outDir: string;
  /** Folder name: letters, digits, '_' and '-', starting with a letter or digit. */
  readonly category: string;
  /** Unsigned 32-bit integer. */
  readonly seed: number;
  readonly size?: number;
  readonly trainCount?: number;
  readonly testGoodCount?: number;
  /** Test images per defect type. */
  readonly testDefectCount?: number;
  readonly texture?: TextureKind;
  /** Replace an existing non-empty `<outDir>/<category>` instead of failing. */
  readonly overwrite?: boolean;
}

export const DEFAULT_GENERATOR_OPTIONS = {
  size: 256,
  trainCount: 200,
  testGoodCount: 40,
  testDefectCount: 12,
} as const;

export interface GeneratedImageEntry {
  readonly split: Split;
  readonly label: SampleLabel;
  /** Relative to the category folder, '/'-separated, e.g. "test/hole/003.png". */
  readonly imagePath: string;
  /** Relative to the category folder, e.g. "ground_truth/hole/003_mask.png"; null for good images. */
  readonly maskPath: string | null;
  /** Defective pixels (0 for good images). */
  readonly maskPixelCount: number;
  /** 8-connected regions in the mask (0 for good images). */
  readonly maskRegionCount: number;
}

export interface GeneratedCategorySummary {
  readonly category: string;
  /** Absolute path of `<outDir>/<category>`. */
  readonly categoryDir: string;
  readonly seed: number;
  readonly size: number;
  readonly texture: TextureKind;
  readonly counts: {
    readonly train: { readonly good: number };
    readonly test: Readonly<Record<SampleLabel, number>>;
  };
  readonly imageCount: number;
  readonly maskCount: number;
  /** train/good, then test/good, then each defect type in DEFECT_TYPES order; indices ascending. */
  readonly files: readonly GeneratedImageEntry[];
}

export class GeneratorOptionsError extends Error {
  override readonly name = 'GeneratorOptionsError';
}

const CATEGORY_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

function requireInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new GeneratorOptionsError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
}

interface ResolvedOptions {
  readonly outDir: string;
  readonly category: string;
  readonly seed: number;
  readonly size: number;
  readonly trainCount: number;
  readonly testGoodCount: number;
  readonly testDefectCount: number;
  readonly texture: TextureKind;
  readonly overwrite: boolean;
}

/** Applies defaults and checks ranges; throws GeneratorOptionsError with a readable message. */
export function resolveGeneratorOptions(options: WriteMvtecCategoryOptions): ResolvedOptions {
  if (options.outDir.trim() === '') throw new GeneratorOptionsError('outDir must not be empty');
  if (!CATEGORY_NAME.test(options.category)) {
    throw new GeneratorOptionsError(
      `category must be 1–64 letters, digits, '_' or '-', starting with a letter or digit, got ${JSON.stringify(options.category)}`,
    );
  }
  const resolved: ResolvedOptions = {
    outDir: path.resolve(options.outDir),
    category: options.category,
    seed: options.seed,
    size: options.size ?? DEFAULT_GENERATOR_OPTIONS.size,
    trainCount: options.trainCount ?? DEFAULT_GENERATOR_OPTIONS.trainCount,
    testGoodCount: options.testGoodCount ?? DEFAULT_GENERATOR_OPTIONS.testGoodCount,
    testDefectCount: options.testDefectCount ?? DEFAULT_GENERATOR_OPTIONS.testDefectCount,
    texture: options.texture ?? textureForCategory(options.category),
    overwrite: options.overwrite ?? false,
  };
  requireInteger('seed', resolved.seed, 0, 0xffffffff);
  requireInteger('size', resolved.size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE);
  requireInteger('trainCount', resolved.trainCount, 0, MAX_IMAGES_PER_FOLDER);
  requireInteger('testGoodCount', resolved.testGoodCount, 0, MAX_IMAGES_PER_FOLDER);
  requireInteger('testDefectCount', resolved.testDefectCount, 0, MAX_IMAGES_PER_FOLDER);
  if (!(TEXTURE_KINDS as readonly string[]).includes(resolved.texture)) {
    throw new GeneratorOptionsError(
      `texture must be one of ${TEXTURE_KINDS.join(', ')}, got ${JSON.stringify(resolved.texture)}`,
    );
  }
  return resolved;
}

async function isMissingOrEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
}

function encodeRgbPng(image: Uint8Array, size: number, file: string): Promise<unknown> {
  return sharp(image, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toFile(file);
}

function encodeMaskPng(mask: Uint8Array, size: number, file: string): Promise<unknown> {
  return sharp(mask, { raw: { width: size, height: size, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(file);
}

/** PNG encodes run on sharp's thread pool while the next image is generated; this bounds the backlog. */
const MAX_ENCODES_IN_FLIGHT = 4;

/**
 * Writes `<outDir>/<category>/{train/good, test/good, test/<defect>, ground_truth/<defect>}` in the
 * MVTec AD layout. Files go to a temporary sibling folder that is renamed into place at the end, so
 * a failed run leaves nothing half-written. Only folders that receive files are created.
 */
export async function writeMvtecCategory(options: WriteMvtecCategoryOptions): Promise<GeneratedCategorySummary> {
  const resolved = resolveGeneratorOptions(options);
  const { outDir, category, seed, size, texture } = resolved;
  const categoryDir = path.join(outDir, category);
  if (!resolved.overwrite && !(await isMissingOrEmptyDir(categoryDir))) {
    throw new GeneratorOptionsError(`${categoryDir} already exists and is not empty (pass overwrite to replace it)`);
  }
  await mkdir(outDir, { recursive: true });
  const stagingDir = path.join(outDir, `.${category}.partial-${process.pid}`);
  await rm(stagingDir, { recursive: true, force: true });

  const style = createCategoryStyle(seed, category, texture);
  const files: GeneratedImageEntry[] = [];
  const inFlight: Array<Promise<unknown>> = [];
  const enqueue = async (encode: Promise<unknown>): Promise<void> => {
    encode.catch(() => undefined); // awaited below; this only stops an early rejection being reported as unhandled
    inFlight.push(encode);
    if (inFlight.length >= MAX_ENCODES_IN_FLIGHT) await inFlight.shift();
  };

  const folders: Array<{ split: Split; label: SampleLabel; count: number }> = [
    { split: 'train', label: 'good', count: resolved.trainCount },
    { split: 'test', label: 'good', count: resolved.testGoodCount },
    ...DEFECT_TYPES.map((defect) => ({ split: 'test' as const, label: defect, count: resolved.testDefectCount })),
  ];

  try {
    for (const { split, label, count } of folders) {
      if (count === 0) continue;
      const imageFolder = `${split}/${label}`;
      const maskFolder = `ground_truth/${label}`;
      await mkdir(path.join(stagingDir, split, label), { recursive: true });
      if (label !== 'good') await mkdir(path.join(stagingDir, 'ground_truth', label), { recursive: true });
      const stemWidth = max(3, String(count - 1).length);
      for (let index = 0; index < count; index++) {
        const stem = String(index).padStart(stemWidth, '0');
        const sample = generateSample({ seed, category, size, split, label, index, texture }, style);
        const imagePath = `${imageFolder}/${stem}.png`;
        await enqueue(encodeRgbPng(sample.image, size, path.join(stagingDir, imagePath)));
        if (sample.mask === null) {
          files.push({ split, label, imagePath, maskPath: null, maskPixelCount: 0, maskRegionCount: 0 });
          continue;
        }
        const maskPath = `${maskFolder}/${stem}_mask.png`;
        await enqueue(encodeMaskPng(sample.mask, size, path.join(stagingDir, maskPath)));
        let maskPixelCount = 0;
        for (const value of sample.mask) if (value !== 0) maskPixelCount++;
        files.push({
          split,
          label,
          imagePath,
          maskPath,
          maskPixelCount,
          maskRegionCount: countConnectedRegions(sample.mask, size, 8),
        });
      }
    }
    while (inFlight.length > 0) await inFlight.shift();
    await mkdir(stagingDir, { recursive: true });
    await rm(categoryDir, { recursive: true, force: true });
    await rename(stagingDir, categoryDir);
  } catch (error) {
    await Promise.allSettled(inFlight);
    await rm(stagingDir, { recursive: true, force: true });
    throw error;
  }

  const perDefect = resolved.testDefectCount;
  const testCounts: Record<SampleLabel, number> = {
    good: resolved.testGoodCount,
    scratch: perDefect,
    hole: perDefect,
    stain: perDefect,
    fold: perDefect,
    crack: perDefect,
  };
  return {
    category,
    categoryDir,
    seed,
    size,
    texture,
    counts: { train: { good: resolved.trainCount }, test: testCounts },
    imageCount: files.length,
    maskCount: files.filter((file) => file.maskPath !== null).length,
    files,
  };
}
