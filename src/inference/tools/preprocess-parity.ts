/**
 * How far the service's pre-processing is from the Python trainer's, on images whose trainer
 * tensors were saved next to them (`<name>.input.f32`, float32 little-endian CHW).
 *
 *     node dist/src/inference/tools/preprocess-parity.js <fixture dir> [<fixture dir> ...]
 *
 * Each directory needs a manifest.json with `input_size` [H, W], `mean`/`std` (top level or
 * under `preprocessing`; default ImageNet), and the images as `images`
 * (`{ "<name>": { "file": "<png>" } }`) or `cases` (`[{ "name", "image", "input": { "file" } }]`,
 * the format of test/fixtures/model).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { RgbTriple } from '../model-contract';
import { RESIZE_METHODS, preprocessImage, type ResizeMethod } from '../preprocess';

export const IMAGENET_MEAN: RgbTriple = [0.485, 0.456, 0.406];
export const IMAGENET_STD: RgbTriple = [0.229, 0.224, 0.225];

export interface ParityImage {
  readonly name: string;
  readonly imagePath: string;
  readonly tensorPath: string;
}

export interface ParitySet {
  readonly inputSize: readonly [height: number, width: number];
  readonly mean: RgbTriple;
  readonly std: RgbTriple;
  readonly images: readonly ParityImage[];
}

export interface ImageParity {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly maxAbsDiff: number;
  readonly meanAbsDiff: number;
  /** Share of tensor values off by more than one grey level (1/255/std). */
  readonly fractionOverOneLevel: number;
}

const triple = z.tuple([z.number(), z.number(), z.number()]);
const fileRef = z.union([z.string(), z.object({ file: z.string() })]);
const manifestSchema = z.object({
  input_size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  mean: triple.optional(),
  std: triple.optional(),
  preprocessing: z.object({ mean: triple.optional(), std: triple.optional() }).optional(),
  /** test/fixtures/inference/images: `{ "<name>": { "file": "<png>" } }`. */
  images: z.record(z.object({ file: z.string() })).optional(),
  /** test/fixtures/model (training/fixtures.py): `[{ "name", "image", "input": { "file" } }]`. */
  cases: z.array(z.object({ name: z.string(), image: z.string(), input: fileRef.optional() })).optional(),
});

/** Reads a fixture directory's manifest.json into a {@link ParitySet}. */
export async function readParitySet(directory: string): Promise<ParitySet> {
  const manifest = manifestSchema.parse(JSON.parse(await readFile(path.join(directory, 'manifest.json'), 'utf8')));
  const entries = [
    ...Object.entries(manifest.images ?? {}).map(([name, entry]) => ({
      name,
      file: entry.file,
      input: `${name}.input.f32`,
    })),
    ...(manifest.cases ?? []).map((entry) => ({
      name: entry.name,
      file: entry.image,
      input:
        entry.input === undefined
          ? `${entry.name}.input.f32`
          : typeof entry.input === 'string'
            ? entry.input
            : entry.input.file,
    })),
  ];
  if (entries.length === 0) throw new Error(`${directory}/manifest.json lists no images ("images" or "cases")`);
  return {
    inputSize: manifest.input_size,
    mean: manifest.mean ?? manifest.preprocessing?.mean ?? IMAGENET_MEAN,
    std: manifest.std ?? manifest.preprocessing?.std ?? IMAGENET_STD,
    images: entries.map(({ name, file, input }) => ({
      name,
      imagePath: path.join(directory, file),
      tensorPath: path.join(directory, input),
    })),
  };
}

export async function readFloat32File(file: string): Promise<Float32Array> {
  const bytes = await readFile(file);
  if (bytes.byteLength % 4 !== 0) throw new Error(`${file} is not float32 data (${bytes.byteLength} bytes)`);
  const values = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(values.buffer).set(bytes);
  return values;
}

/** Pre-processes every image of the set with `resize` and compares with the trainer's tensor. */
export async function measurePreprocessParity(set: ParitySet, resize: ResizeMethod): Promise<ImageParity[]> {
  const [height, width] = set.inputSize;
  const plane = height * width;
  const results: ImageParity[] = [];
  for (const image of set.images) {
    const expected = await readFloat32File(image.tensorPath);
    const actual = await preprocessImage(await readFile(image.imagePath), {
      inputSize: set.inputSize,
      mean: set.mean,
      std: set.std,
      resize,
      maxPixels: 100_000_000,
    });
    if (expected.length !== actual.tensor.length) {
      throw new Error(`${image.tensorPath} has ${expected.length} values, the service made ${actual.tensor.length}`);
    }
    let max = 0;
    let sum = 0;
    let overOneLevel = 0;
    for (let i = 0; i < expected.length; i++) {
      const difference = Math.abs(actual.tensor[i] - expected[i]);
      if (difference > max) max = difference;
      sum += difference;
      const level = 1 / 255 / set.std[Math.floor(i / plane)];
      if (difference > level * 1.0001) overOneLevel++;
    }
    results.push({
      name: image.name,
      width: actual.originalWidth,
      height: actual.originalHeight,
      maxAbsDiff: max,
      meanAbsDiff: sum / expected.length,
      fractionOverOneLevel: overOneLevel / expected.length,
    });
  }
  return results;
}

async function main(directories: readonly string[]): Promise<void> {
  if (directories.length === 0) throw new Error('usage: preprocess-parity <fixture dir> [...]');
  for (const directory of directories) {
    const set = await readParitySet(directory);
    for (const resize of RESIZE_METHODS) {
      const results = await measurePreprocessParity(set, resize);
      console.log(`\n${directory} → ${set.inputSize.join('×')}, resize ${resize}`);
      console.log(
        'image'.padEnd(24),
        'size'.padEnd(11),
        'max |Δ|'.padStart(10),
        'mean |Δ|'.padStart(10),
        '>1 level'.padStart(9),
      );
      for (const r of results) {
        console.log(
          r.name.padEnd(24),
          `${r.width}×${r.height}`.padEnd(11),
          r.maxAbsDiff.toFixed(5).padStart(10),
          r.meanAbsDiff.toFixed(5).padStart(10),
          `${(100 * r.fractionOverOneLevel).toFixed(2)}%`.padStart(9),
        );
      }
      console.log('max over all images:', Math.max(...results.map((r) => r.maxAbsDiff)).toFixed(5));
    }
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
