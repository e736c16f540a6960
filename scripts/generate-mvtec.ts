/**
 * Writes a synthetic MVTec-AD-style category to disk.
 *
 *   npm run generate:mvtec -- --out <dir> --category <name> --seed <int>
 *     [--size 256] [--train 200] [--test-good 40] [--test-defect 12] [--texture weave|brushed-metal|wood-grain] [--overwrite]
 *
 * The flags above are a contract (the Python trainer calls this). On success the last line of stdout
 * is a one-line JSON summary; on bad arguments a message goes to stderr and the exit code is 2.
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_GENERATOR_OPTIONS,
  GeneratorOptionsError,
  TEXTURE_KINDS,
  type GeneratedCategorySummary,
  type TextureKind,
  type WriteMvtecCategoryOptions,
  writeMvtecCategory,
} from '../src/synthetic/mvtec-generator';

export const USAGE = `Usage: npm run generate:mvtec -- --out <dir> --category <name> --seed <int> [options]

Writes <dir>/<name>/{train/good, test/good, test/<defect>, ground_truth/<defect>} as PNG files.

Required:
  --out <dir>          parent folder of the category folder (created if missing)
  --category <name>    category folder name: letters, digits, '_' or '-'
  --seed <int>         0 to 4294967295; same arguments give byte-identical files

Options:
  --size <px>          square image size, 32 to 4096 (default ${DEFAULT_GENERATOR_OPTIONS.size})
  --train <n>          normal training images (default ${DEFAULT_GENERATOR_OPTIONS.trainCount})
  --test-good <n>      normal test images (default ${DEFAULT_GENERATOR_OPTIONS.testGoodCount})
  --test-defect <n>    test images per defect type: scratch, hole, stain, fold, crack (default ${DEFAULT_GENERATOR_OPTIONS.testDefectCount})
  --texture <kind>     ${TEXTURE_KINDS.join(' | ')} (default: from the category name, else weave)
  --overwrite          replace <dir>/<name> if it already exists and is not empty
  -h, --help           show this help`;

export type ParsedCommand =
  { readonly kind: 'help' } | { readonly kind: 'generate'; readonly options: WriteMvtecCategoryOptions };

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const FLAG_OPTIONS = {
  out: { type: 'string' },
  category: { type: 'string' },
  seed: { type: 'string' },
  size: { type: 'string' },
  train: { type: 'string' },
  'test-good': { type: 'string' },
  'test-defect': { type: 'string' },
  texture: { type: 'string' },
  overwrite: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function readFlags(args: readonly string[]) {
  try {
    return parseArgs({ args: [...args], strict: true, allowPositionals: false, options: FLAG_OPTIONS }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function parseInteger(flag: string, text: string): number {
  if (!/^\d+$/.test(text))
    throw new UsageError(`--${flag} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseOptionalInteger(flag: string, text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseInteger(flag, text);
}

function isTextureKind(text: string): text is TextureKind {
  return (TEXTURE_KINDS as readonly string[]).includes(text);
}

/** Parses command-line arguments (without the node and script paths); throws UsageError. */
export function parseGeneratorArguments(args: readonly string[]): ParsedCommand {
  const flags = readFlags(args);
  if (flags.help === true) return { kind: 'help' };

  const { out, category, seed, texture } = flags;
  if (out === undefined || category === undefined || seed === undefined) {
    const missing = [
      out === undefined && '--out',
      category === undefined && '--category',
      seed === undefined && '--seed',
    ].filter(Boolean);
    throw new UsageError(`missing required ${missing.join(', ')}`);
  }
  if (texture !== undefined && !isTextureKind(texture)) {
    throw new UsageError(`--texture must be one of ${TEXTURE_KINDS.join(', ')}, got ${JSON.stringify(texture)}`);
  }
  return {
    kind: 'generate',
    options: {
      outDir: out,
      category,
      seed: parseInteger('seed', seed),
      size: parseOptionalInteger('size', flags.size),
      trainCount: parseOptionalInteger('train', flags.train),
      testGoodCount: parseOptionalInteger('test-good', flags['test-good']),
      testDefectCount: parseOptionalInteger('test-defect', flags['test-defect']),
      texture,
      overwrite: flags.overwrite === true,
    },
  };
}

/** The printed summary: everything but the per-file list, which the folder layout already gives. */
export function summaryLine(summary: GeneratedCategorySummary, elapsedMs: number): string {
  const { category, categoryDir, seed, size, texture, counts, imageCount, maskCount } = summary;
  return JSON.stringify({ category, categoryDir, seed, size, texture, counts, imageCount, maskCount, elapsedMs });
}

export async function main(args: readonly string[]): Promise<number> {
  let command: ParsedCommand;
  try {
    command = parseGeneratorArguments(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`generate-mvtec: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (command.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const started = performance.now();
  try {
    const summary = await writeMvtecCategory(command.options);
    process.stdout.write(`${summaryLine(summary, Math.round(performance.now() - started))}\n`);
    return 0;
  } catch (error) {
    if (error instanceof GeneratorOptionsError) {
      process.stderr.write(`generate-mvtec: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(
      `generate-mvtec: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
