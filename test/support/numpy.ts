// Loads an .npy file with the real numpy, as an ML engineer would: system python3 if it has
// numpy, else the trainer's virtual environment; null (the caller skips) when neither has it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPOSITORY_ROOT = path.resolve(__dirname, '..', '..');

export interface LoadedArray {
  dtype: string;
  shape: number[];
  min: number;
  max: number;
  /** float64 sum of the values. */
  sum: number;
}

let pythonFound: Promise<string | null> | null = null;

/** A python with numpy, or null. */
export function pythonWithNumpy(): Promise<string | null> {
  pythonFound ??= (async () => {
    const venv = path.join(REPOSITORY_ROOT, '.venv-training', 'bin', 'python');
    for (const candidate of ['python3', ...(existsSync(venv) ? [venv] : [])]) {
      try {
        await run(candidate, ['-c', 'import numpy']);
        return candidate;
      } catch {
        // next one
      }
    }
    return null;
  })();
  return pythonFound;
}

/** numpy.load of the bytes (written to a temporary file); null without a python that has numpy. */
export async function loadWithNumpy(bytes: Buffer): Promise<LoadedArray | null> {
  const python = await pythonWithNumpy();
  if (!python) return null;
  const directory = await mkdtemp(path.join(process.env.TEST_TMP_DIR ?? os.tmpdir(), 'npy-'));
  const file = path.join(directory, 'map.npy');
  try {
    await writeFile(file, bytes);
    const script = [
      'import json, sys, numpy',
      'a = numpy.load(sys.argv[1])',
      'print(json.dumps({"dtype": a.dtype.str, "shape": list(a.shape), "min": float(a.min()), "max": float(a.max()), "sum": float(a.astype(numpy.float64).sum())}))',
    ].join('\n');
    const { stdout } = await run(python, ['-c', script, file]);
    return JSON.parse(stdout) as LoadedArray;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
