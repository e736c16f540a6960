/**
 * Execution providers of onnxruntime-node on one machine: for each provider, can it open the
 * model, how long does `session.run` take at each batch size, and how far are its outputs from a
 * reference. Made for the GPU check (scripts/gpu-check/run-on-device.sh runs it once per provider
 * on a lent GPU machine, after `training.gpu_check` wrote the model and the reference); it runs
 * anywhere.
 *
 *   npm run bench:providers -- --model models/full/ast-mfr.full.onnx \
 *     [--providers webgpu,cpu] [--batches 1,8,32] [--runs 10] [--seconds-per-batch 30] \
 *     [--reference training/out/gpu-check/reference.json] [--json bench/out/providers.json]
 *
 * Only onnxruntime-node, Node's own modules and bench/support.ts are used, so that the device
 * machine needs no more than node and onnxruntime-node carried to it. A provider that fails is
 * recorded with its error (e.g. "Failed to get a WebGPU adapter") and the others still run; one
 * whose files are not installed (cuda, tensorrt: onnxruntime-node's install script downloads
 * them, which this project skips offline) is recorded as skipped without being tried. Each
 * provider's session is alone: `executionProviders: [provider]` (onnxruntime still runs on the CPU
 * any node the provider does not take).
 *
 * With --reference (reference.json from `python -m training.gpu_check`: fixed input images and
 * onnxruntime's CPU outputs on them, raw little-endian float32), batch b runs the reference's
 * first b images and each output is compared with the reference's; without it, a pseudo-random
 * input and the first working provider's outputs. The JSON is rewritten after every batch, so a
 * run killed by a time limit keeps what it measured (`complete: false`).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { percentile } from './support';

interface Options {
  model: string;
  providers: string[];
  batches: number[];
  runs: number;
  /** Stop timing a batch size after this many seconds (at least 3 runs); no limit when absent. */
  secondsPerBatch?: number;
  reference?: string;
  json: string;
}

interface BatchResult {
  batchSize: number;
  /** Milliseconds per `session.run` of the whole batch. */
  p50Ms?: number;
  minMs?: number;
  msPerImage?: number;
  imagesPerSecond?: number;
  runs?: number;
  /** Largest |difference| of each output from the reference's (or the first provider's); "Infinity" for NaN or a shape mismatch. */
  maxAbsDiff?: Record<string, number | string>;
  comparedTo?: string;
  error?: string;
}

interface ProviderResult {
  provider: string;
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  sessionMs?: number;
  batches: BatchResult[];
}

/** Fixed input images and the outputs some other runtime computed on them. */
interface Reference {
  file: string;
  batch: number;
  imageShape: [number, number, number];
  input: Float32Array;
  outputs: Map<string, Float32Array>;
  computedBy: string;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (flag: string): string | undefined => {
    const index = argv.indexOf(flag);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const model = value('--model');
  if (!model) throw new Error('--model <onnx file> is required');
  const list = (text: string): string[] =>
    text
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  const batches = list(value('--batches') ?? '1,16').map(Number);
  if (batches.length === 0 || batches.some((size) => !Number.isInteger(size) || size < 1))
    throw new Error('--batches takes positive integers, e.g. 1,8,32');
  const runs = Number(value('--runs') ?? '10');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a positive integer');
  const seconds = value('--seconds-per-batch');
  const secondsPerBatch = seconds === undefined ? undefined : Number(seconds);
  if (secondsPerBatch !== undefined && !(secondsPerBatch > 0))
    throw new Error('--seconds-per-batch takes a positive number');
  return {
    model,
    providers: list(value('--providers') ?? 'webgpu,cpu'),
    batches,
    runs,
    secondsPerBatch,
    reference: value('--reference'),
    json: value('--json') ?? path.join('bench', 'out', 'providers.json'),
  };
}

const describe = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split('\n')[0]?.slice(0, 500) ?? '';

function readFloat32(file: string, expectedLength: number): Float32Array {
  const bytes = readFileSync(file);
  if (bytes.byteLength !== expectedLength * 4) {
    throw new Error(`${file} holds ${bytes.byteLength} bytes, expected ${expectedLength} float32 values`);
  }
  // A copy into an aligned buffer of its own; the files are little-endian, as is every machine this runs on.
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function readReference(file: string): Reference {
  interface Entry {
    file: string;
    shape: number[];
  }
  const meta = JSON.parse(readFileSync(file, 'utf8')) as {
    format?: string;
    batch: number;
    input: Entry;
    outputs: Record<string, Entry>;
    computed_by?: string;
  };
  if (meta.format !== 'gpu-check-reference/1') throw new Error(`${file}: unknown format ${String(meta.format)}`);
  const directory = path.dirname(file);
  const load = (entry: Entry): Float32Array =>
    readFloat32(
      path.join(directory, entry.file),
      entry.shape.reduce((total, dim) => total * dim, 1),
    );
  const [batch, channels, height, width] = meta.input.shape;
  if (batch !== meta.batch || !channels || !height || !width) {
    throw new Error(`${file}: the input is not [${meta.batch}, C, H, W]: ${JSON.stringify(meta.input.shape)}`);
  }
  return {
    file,
    batch,
    imageShape: [channels, height, width],
    input: load(meta.input),
    outputs: new Map(Object.entries(meta.outputs).map(([name, entry]) => [name, load(entry)])),
    computedBy: meta.computed_by ?? file,
  };
}

/** Why a provider cannot run with this installation, or undefined when it may. */
function unavailable(provider: string): string | undefined {
  const backends = ort.listSupportedBackends();
  const backend = backends.find((candidate) => candidate.name === provider);
  if (!backend) {
    return `onnxruntime-node ${ort.env.versions.node ?? '?'} has no "${provider}" provider (it knows ${backends.map((b) => b.name).join(', ')})`;
  }
  if (backend.bundled) return undefined;
  const binDir = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin');
  const library = `libonnxruntime_providers_${provider}`;
  let found = false;
  try {
    found = (readdirSync(binDir, { recursive: true, encoding: 'utf8' }) as string[]).some((entry) =>
      path.basename(entry).startsWith(library),
    );
  } catch {
    found = false;
  }
  return found
    ? undefined
    : `provider files absent: no ${library} in onnxruntime-node's bin/ (its install script downloads them, ` +
        'with ONNXRUNTIME_NODE_INSTALL=cuda12; this project skips that step, which needs internet)';
}

/** The model's image input as [channels, height, width] (the batch dimension is dynamic). */
function imageShape(session: ort.InferenceSession): [number, number, number] {
  const metadata = session.inputMetadata[0];
  const shape = metadata && metadata.isTensor ? metadata.shape : [];
  const [, channels, height, width] = shape;
  if (typeof channels !== 'number' || typeof height !== 'number' || typeof width !== 'number') {
    throw new Error(`the first input is not [N, C, H, W] with fixed C, H, W: ${JSON.stringify(shape)}`);
  }
  return [channels, height, width];
}

/** The same pseudo-random input for every provider (a linear congruential sequence). */
function pseudoRandomInput(batchSize: number, [channels, height, width]: [number, number, number]): Float32Array {
  const data = new Float32Array(batchSize * channels * height * width);
  let state = 12345;
  for (let i = 0; i < data.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = (state / 2 ** 32) * 4 - 2;
  }
  return data;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return Number.isNaN(worst) ? Number.POSITIVE_INFINITY : worst;
}

/** The outputs of one run, by name, copied out of onnxruntime's tensors. */
function outputsOf(outputs: ort.InferenceSession.ReturnType): Map<string, Float32Array> {
  return new Map(
    Object.entries(outputs).map(([name, tensor]) => [name, Float32Array.from(tensor.data as Float32Array)]),
  );
}

/** Compares each output with the expected values of the batch's images (the first `length` values of each). */
function compare(
  actual: Map<string, Float32Array>,
  expected: Map<string, Float32Array>,
): Record<string, number | string> {
  const result: Record<string, number | string> = {};
  for (const [name, values] of expected) {
    const got = actual.get(name);
    const difference = got ? maxAbsDiff(got, values.subarray(0, got.length)) : Number.POSITIVE_INFINITY;
    // JSON has no Infinity (JSON.stringify would write null, which reads as "not compared").
    result[name] = Number.isFinite(difference) ? difference : 'Infinity';
  }
  return result;
}

async function measureBatch(
  session: ort.InferenceSession,
  options: Options,
  batchSize: number,
  shape: [number, number, number],
  reference: Reference | undefined,
  firstProvider: Map<number, { provider: string; outputs: Map<string, Float32Array> }>,
  provider: string,
): Promise<BatchResult> {
  const perImage = shape[0] * shape[1] * shape[2];
  if (reference && batchSize > reference.batch) {
    throw new Error(`the reference holds ${reference.batch} images, fewer than the batch`);
  }
  const data = reference ? reference.input.subarray(0, batchSize * perImage) : pseudoRandomInput(batchSize, shape);
  const feeds = {
    [session.inputNames[0] as string]: new ort.Tensor('float32', data, [batchSize, ...shape]),
  };
  // Two warm-up runs: the first compiles kernels (and, on a GPU, uploads the weights).
  const first = outputsOf(await session.run(feeds));
  await session.run(feeds);
  const times: number[] = [];
  const started = performance.now();
  for (let run = 0; run < options.runs; run++) {
    const runStarted = performance.now();
    await session.run(feeds);
    times.push(performance.now() - runStarted);
    if (options.secondsPerBatch && times.length >= 3 && performance.now() - started > options.secondsPerBatch * 1000)
      break;
  }
  const p50Ms = percentile(times, 50);
  let comparison: Pick<BatchResult, 'maxAbsDiff' | 'comparedTo'> = {};
  if (reference) {
    comparison = { maxAbsDiff: compare(first, reference.outputs), comparedTo: reference.computedBy };
  } else {
    const earlier = firstProvider.get(batchSize);
    if (earlier) comparison = { maxAbsDiff: compare(first, earlier.outputs), comparedTo: earlier.provider };
    else firstProvider.set(batchSize, { provider, outputs: first });
  }
  return {
    batchSize,
    p50Ms,
    minMs: Math.min(...times),
    msPerImage: p50Ms / batchSize,
    imagesPerSecond: (1000 * batchSize) / p50Ms,
    runs: times.length,
    ...comparison,
  };
}

/** Measures one provider into `result` (which the caller saves as it fills: see `save`). */
async function measureProvider(
  options: Options,
  result: ProviderResult,
  reference: Reference | undefined,
  firstProvider: Map<number, { provider: string; outputs: Map<string, Float32Array> }>,
  save: () => void,
): Promise<void> {
  const fail = (status: 'failed' | 'skipped', reason: string | undefined): void => {
    result.status = status;
    result.reason = reason;
  };
  const missing = unavailable(result.provider);
  if (missing) return fail('skipped', missing);
  const opened = performance.now();
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(options.model, {
      executionProviders: [result.provider],
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    return fail('failed', describe(error));
  }
  result.sessionMs = performance.now() - opened;
  save();
  try {
    const shape = imageShape(session);
    if (reference && reference.imageShape.join() !== shape.join()) {
      throw new Error(`the reference's images are ${reference.imageShape.join('×')}, the model's ${shape.join('×')}`);
    }
    for (const batchSize of options.batches) {
      try {
        result.batches.push(
          await measureBatch(session, options, batchSize, shape, reference, firstProvider, result.provider),
        );
      } catch (error) {
        result.batches.push({ batchSize, error: describe(error) });
      }
      process.stdout.write(`${result.provider} b=${batchSize}: ${JSON.stringify(result.batches.at(-1))}\n`);
      save();
    }
    if (result.batches.length > 0 && result.batches.every((batch) => batch.error)) {
      fail('failed', result.batches[0]?.error);
    }
  } catch (error) {
    fail('failed', describe(error));
  } finally {
    await session.release();
  }
}

const cell = (text: string): string => text.replace(/\|/g, '\\|');

function table(results: ProviderResult[]): string {
  const diff = (batch: BatchResult): string =>
    batch.maxAbsDiff
      ? Object.entries(batch.maxAbsDiff)
          .map(([name, value]) => `${name} ${typeof value === 'number' ? value.toExponential(1) : value}`)
          .join(', ')
      : 'reference';
  const rows = results.flatMap((result) =>
    result.status !== 'ok'
      ? [`| ${result.provider} | – | ${result.status}: ${cell(result.reason ?? '')} |  |  |  |  |`]
      : result.batches.map((batch) =>
          batch.error
            ? `| ${result.provider} | ${batch.batchSize} | run failed: ${cell(batch.error)} |  |  |  |  |`
            : `| ${result.provider} | ${batch.batchSize} | ${batch.p50Ms?.toFixed(1)} | ${batch.minMs?.toFixed(1)} | ${batch.msPerImage?.toFixed(2)} | ${batch.imagesPerSecond?.toFixed(2)} | ${diff(batch)} |`,
        ),
  );
  return [
    '| provider | batch | run p50 (ms) | run min (ms) | ms/img | img/s | max abs diff |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const reference = options.reference ? readReference(options.reference) : undefined;
  const firstProvider = new Map<number, { provider: string; outputs: Map<string, Float32Array> }>();
  const results: ProviderResult[] = [];
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.availableParallelism()}, Node ${process.version}, onnxruntime-node ${ort.env.versions.node ?? '?'}`;
  const date = new Date().toISOString();
  mkdirSync(path.dirname(options.json), { recursive: true });
  const save = (complete: boolean): void => {
    const report = {
      date,
      machine,
      model: options.model,
      runs: options.runs,
      reference: reference ? { file: reference.file, batch: reference.batch, computedBy: reference.computedBy } : null,
      complete,
      results,
    };
    writeFileSync(`${options.json}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
    renameSync(`${options.json}.tmp`, options.json);
  };
  for (const provider of options.providers) {
    const result: ProviderResult = { provider, status: 'ok', batches: [] };
    results.push(result);
    await measureProvider(options, result, reference, firstProvider, () => save(false));
    save(false);
  }
  save(true);
  process.stdout.write(
    `\n${machine}\nmodel ${options.model}, up to ${options.runs} timed runs after 2 warm-ups` +
      `${reference ? `, compared with ${reference.computedBy}` : ''}\n\n${table(results)}\n\nwrote ${options.json}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
