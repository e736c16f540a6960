import { existsSync } from 'node:fs';
import path from 'node:path';

/** The repository root when this module runs from its TypeScript source (src/utils/). */
const SOURCE_ROOT = path.resolve(__dirname, '..', '..');

/**
 * The compiled script `fileName` of a worker thread beside the calling module (`directory`, its
 * __dirname). Piscina and worker_threads need JavaScript; under ts-jest the modules run from
 * src/*.ts, so this points at the build output instead (`npm test` and `npm start` build first).
 */
export function compiledWorkerFile(directory: string, fileName: string, description: string): string {
  const file = __filename.endsWith('.ts')
    ? path.join(SOURCE_ROOT, 'dist', path.relative(SOURCE_ROOT, directory), fileName)
    : path.join(directory, fileName);
  if (!existsSync(file)) {
    throw new Error(`The ${description} ${file} is missing: run "npm run build" first (npm test and npm start do)`);
  }
  return file;
}
