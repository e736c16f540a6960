import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { normalizeToChw, preprocessImage, resizeRgbPilBilinear } from '../../src/inference/preprocess';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  measurePreprocessParity,
  readParitySet,
} from '../../src/inference/tools/preprocess-parity';
import { MODEL_FIXTURES, fixture } from './helpers';

const IMAGES = fixture('images');

/**
 * Measured with `node dist/src/inference/tools/preprocess-parity.js <fixture dir>` (see
 * src/inference/README.md): sharp-linear differs from PIL by up to ~7 grey levels (0.123) when
 * shrinking, much more when enlarging. Regression bounds: those measurements with some room.
 */
const SHARP_LINEAR_MAX_DIFF = { downscale: 0.15, upscale: 0.95 };
const SHARP_LINEAR_MEAN_DIFF = { downscale: 0.012, upscale: 0.12 };

describe('preprocessImage against the Python trainer (training.data.preprocess)', () => {
  // Bitwise equality is the point here, and it holds on any x86-64 machine: PNG decoding and
  // PIL's 8-bit BILINEAR are integer arithmetic, and both sides normalise with the same
  // correctly rounded float64 subtract/divide before one rounding to float32.
  it('pil-bilinear reproduces the trainer tensors exactly (RGB, grey, RGBA, palette; down- and upscaling)', async () => {
    const results = await measurePreprocessParity(await readParitySet(IMAGES), 'pil-bilinear');
    expect(results).toHaveLength(6);
    for (const result of results)
      expect({ name: result.name, maxAbsDiff: result.maxAbsDiff }).toEqual({ name: result.name, maxAbsDiff: 0 });
  });

  it('sharp-linear stays within the measured distance', async () => {
    const results = await measurePreprocessParity(await readParitySet(IMAGES), 'sharp-linear');
    for (const result of results) {
      const kind = result.width < 64 ? 'upscale' : 'downscale';
      expect({ name: result.name, withinMax: result.maxAbsDiff <= SHARP_LINEAR_MAX_DIFF[kind] }).toEqual({
        name: result.name,
        withinMax: true,
      });
      expect({ name: result.name, withinMean: result.meanAbsDiff <= SHARP_LINEAR_MEAN_DIFF[kind] }).toEqual({
        name: result.name,
        withinMean: true,
      });
    }
  });

  const modelFixtures = existsSync(path.join(MODEL_FIXTURES, 'manifest.json')) ? it : it.skip;
  modelFixtures(
    'on the demo model fixtures: pil-bilinear exact, sharp-linear within the measured distance',
    async () => {
      const set = await readParitySet(MODEL_FIXTURES);
      const exact = await measurePreprocessParity(set, 'pil-bilinear');
      expect(exact.length).toBeGreaterThan(0);
      for (const result of exact)
        expect({ name: result.name, maxAbsDiff: result.maxAbsDiff }).toEqual({ name: result.name, maxAbsDiff: 0 });
      for (const result of await measurePreprocessParity(set, 'sharp-linear')) {
        expect({
          name: result.name,
          within:
            result.maxAbsDiff <= SHARP_LINEAR_MAX_DIFF.downscale &&
            result.meanAbsDiff <= SHARP_LINEAR_MEAN_DIFF.downscale,
        }).toEqual({
          name: result.name,
          within: true,
        });
      }
    },
  );
});

describe('preprocessImage', () => {
  it('returns CHW float32 at the model size, the original size and the decoded original', async () => {
    const bytes = readFileSync(fixture('images/rgb-downscale.png'));
    const result = await preprocessImage(bytes, {
      inputSize: [48, 64],
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
      maxPixels: 1_000_000,
    });
    expect(result.tensor).toBeInstanceOf(Float32Array);
    expect(result.tensor).toHaveLength(3 * 48 * 64);
    expect([result.originalWidth, result.originalHeight]).toEqual([203, 157]);
    expect(result.original).toMatchObject({ width: 203, height: 157 });
    expect(result.original.data).toHaveLength(203 * 157 * 3);
  });

  it('expands greyscale to three equal channels', async () => {
    const result = await preprocessImage(readFileSync(fixture('images/gray.png')), {
      inputSize: [48, 64],
      mean: [0, 0, 0],
      std: [1, 1, 1],
      resize: 'pil-bilinear',
      maxPixels: 1_000_000,
    });
    const plane = 48 * 64;
    expect(result.tensor.subarray(0, plane)).toEqual(result.tensor.subarray(plane, 2 * plane));
    expect(result.tensor.subarray(0, plane)).toEqual(result.tensor.subarray(2 * plane));
  });

  it('drops alpha without compositing (transparent pixels keep their colour)', async () => {
    const rgba = Buffer.from([200, 100, 50, 0, 10, 20, 30, 255]);
    const png = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } })
      .png()
      .toBuffer();
    const result = await preprocessImage(png, { inputSize: [1, 2], mean: [0, 0, 0], std: [1, 1, 1], maxPixels: 100 });
    expect(Array.from(result.tensor, (v) => Math.round(v * 255))).toEqual([200, 10, 100, 20, 50, 30]);
  });

  it('refuses images above the pixel limit and bytes that are not an image', async () => {
    const options = { inputSize: [48, 64] as const, mean: IMAGENET_MEAN, std: IMAGENET_STD, maxPixels: 1000 };
    await expect(preprocessImage(readFileSync(fixture('images/rgb-downscale.png')), options)).rejects.toMatchObject({
      code: 'IMAGE_TOO_LARGE',
    });
    await expect(preprocessImage(new TextEncoder().encode('not an image'), options)).rejects.toMatchObject({
      code: 'INVALID_IMAGE',
    });
  });
});

describe('resizeRgbPilBilinear', () => {
  it('averages with a triangle that widens when shrinking (antialiasing)', () => {
    // One row 0, 0, 0, 255, 255, 255 shrunk 3:1: Pillow gives 32 and 223 (not 0 and 255).
    const row = Uint8Array.from([0, 0, 0, 255, 255, 255].flatMap((v) => [v, v, v]));
    const resized = resizeRgbPilBilinear({ data: row, width: 6, height: 1 }, 2, 1);
    expect(Array.from(resized.data)).toEqual([32, 32, 32, 223, 223, 223]);
  });

  it('returns the same image when the size already matches', () => {
    const image = { data: new Uint8Array(12), width: 2, height: 2 };
    expect(resizeRgbPilBilinear(image, 2, 2)).toBe(image);
  });
});

describe('normalizeToChw', () => {
  it('computes (v / 255 - mean) / std per channel into planes', () => {
    const tensor = normalizeToChw(
      { data: Uint8Array.from([255, 0, 51, 0, 255, 102]), width: 2, height: 1 },
      [0.5, 0.5, 0.5],
      [0.5, 0.25, 0.5],
    );
    expect(Array.from(tensor)).toEqual([1, -1, -2, 2, Math.fround(-0.6), Math.fround(-0.2)]);
  });
});
