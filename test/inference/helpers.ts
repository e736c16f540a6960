/** Fixture paths and small helpers shared by the inference tests. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const FIXTURES = path.resolve(__dirname, '../fixtures/inference');
export const fixture = (name: string): string => path.join(FIXTURES, name);

/** Input size [H, W] of tiny.onnx / wrong-signature.onnx, and of slow.onnx. */
export const TINY_SIZE = [8, 12] as const;
export const SLOW_SIZE = [64, 64] as const;

export function readFloat32(file: string): Float32Array {
  const bytes = readFileSync(file);
  const values = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(values.buffer).set(bytes);
  return values;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
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

export function randomTensor(length: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length }, () => random() * 4 - 2);
}

/** What tiny.onnx computes: |0.5·R − 0.25·G + 1.0·B + 0.1| per pixel, score = max. */
export function tinyModelReference(tensor: Float32Array, plane: number): { map: Float32Array; score: number } {
  const map = new Float32Array(plane);
  let score = -Infinity;
  for (let i = 0; i < plane; i++) {
    map[i] = Math.abs(0.5 * tensor[i] - 0.25 * tensor[plane + i] + 1.0 * tensor[2 * plane + i] + 0.1);
    score = Math.max(score, map[i]);
  }
  return { map, score };
}

/** Settles a promise into a value for `expect`: the error's `code`, or 'ok'. */
export async function outcomeCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : `uncoded: ${String(error)}`;
  }
}

/** The trainer's exported fixtures (training/fixtures.py), when present. */
export const MODEL_FIXTURES = path.resolve(__dirname, '../fixtures/model');
export const REPOSITORY_ROOT = path.resolve(__dirname, '../..');

const tensorFile = z.object({ file: z.string(), shape: z.array(z.number().int()) });
const fixtureCase = z.object({
  name: z.string(),
  image: z.string().optional(),
  input: tensorFile,
  anomaly_map: tensorFile,
  score: tensorFile,
});
const modelFixtureManifest = z.object({
  model: z.string(),
  input_size: z.tuple([z.number().int(), z.number().int()]),
  parity_tolerance_abs: z.number().positive(),
  cases: z.array(fixtureCase),
  batched: fixtureCase.optional(),
});
export type ModelFixtureManifest = z.infer<typeof modelFixtureManifest>;
export type ModelFixtureCase = z.infer<typeof fixtureCase>;

export function readModelFixtureManifest(directory = MODEL_FIXTURES): ModelFixtureManifest | undefined {
  const file = path.join(directory, 'manifest.json');
  if (!existsSync(file)) return undefined;
  return modelFixtureManifest.parse(JSON.parse(readFileSync(file, 'utf8')));
}
