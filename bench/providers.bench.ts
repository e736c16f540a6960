/**
 * Execution providers of onnxruntime-node on one machine: for each provider, can it open the
 * model, and how long does `session.run` take at each batch size. Made for the GPU check of
 * the inference issue (webgpu through Vulkan against cpu, full-size model, batch 1 and 16),
 * run on a lent GPU machine by scripts/gpu-check/run-on-device.sh; it runs anywhere.
 *
 *   npm run bench:providers -- --model models/full/ast-mfr.full.onnx \
 *     [--providers webgpu,cpu] [--batches 1,16] [--runs 10] [--json bench/out/providers.json]
 *
 * Only onnxruntime-node, Node's own modules and bench/support.ts are used, so that the device machine needs no
 * more than node and onnxruntime-node carried to it. A provider that fails is recorded with its
 * error (e.g. "Failed to get a WebGPU adapter") and the others still run. Each provider's
 * session is alone: `executionProviders: [provider]` (onnxruntime still runs on the CPU any
 * node the provider does not take). The outputs of every provider are compared with the first
 * working one's, on the same input.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { percentile } from './support';

interface Options {
  model: string;
  providers: string[];
  batches: number[];
  runs: number;
  json: string;
}

interface BatchResult {
  batchSize: number;
  /** Milliseconds per `session.run` of the whole batch. */
  p50Ms?: number;
  minMs?: number;
  imagesPerSecond?: number;
  /** Largest |difference| of the anomaly map and score from the reference provider's. */
  maxAbsDiffToReference?: number;
  error?: string;
}

interface ProviderResult {
  provider: string;
  sessionMs?: number;
  error?: string;
  batches: BatchResult[];
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
  if (batches.some((size) => !Number.isInteger(size) || size < 1))
    throw new Error('--batches takes positive integers, e.g. 1,16');
  const runs = Number(value('--runs') ?? '10');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a positive integer');
  return {
    model,
    providers: list(value('--providers') ?? 'webgpu,cpu'),
    batches,
    runs,
    json: value('--json') ?? path.join('bench', 'out', 'providers.json'),
  };
}

const describe = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split('\n')[0]?.slice(0, 500) ?? '';

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
function input(batchSize: number, [channels, height, width]: [number, number, number]): Float32Array {
  const data = new Float32Array(batchSize * channels * height * width);
  let state = 12345;
  for (let i = 0; i < data.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = (state / 2 ** 32) * 4 - 2;
  }
  return data;
}

function flatten(outputs: ort.InferenceSession.ReturnType): Float32Array {
  const parts = Object.keys(outputs)
    .sort()
    .map((name) => outputs[name]?.data as Float32Array);
  const flat = new Float32Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    flat.set(part, offset);
    offset += part.length;
  }
  return flat;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

async function measureProvider(
  options: Options,
  provider: string,
  reference: Map<number, Float32Array>,
): Promise<ProviderResult> {
  const opened = performance.now();
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(options.model, {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    return { provider, error: describe(error), batches: [] };
  }
  const result: ProviderResult = { provider, sessionMs: performance.now() - opened, batches: [] };
  try {
    const shape = imageShape(session);
    for (const batchSize of options.batches) {
      try {
        const feeds = {
          [session.inputNames[0] as string]: new ort.Tensor('float32', input(batchSize, shape), [batchSize, ...shape]),
        };
        // Two warm-up runs: the first compiles kernels (and, on a GPU, uploads the weights).
        const first = flatten(await session.run(feeds));
        await session.run(feeds);
        const times: number[] = [];
        for (let run = 0; run < options.runs; run++) {
          const started = performance.now();
          await session.run(feeds);
          times.push(performance.now() - started);
        }
        const p50Ms = percentile(times, 50);
        const expected = reference.get(batchSize);
        if (!expected) reference.set(batchSize, first);
        result.batches.push({
          batchSize,
          p50Ms,
          minMs: Math.min(...times),
          imagesPerSecond: (1000 * batchSize) / p50Ms,
          ...(expected ? { maxAbsDiffToReference: maxAbsDiff(first, expected) } : {}),
        });
      } catch (error) {
        result.batches.push({ batchSize, error: describe(error) });
      }
      process.stdout.write(`${provider} b=${batchSize}: ${JSON.stringify(result.batches.at(-1))}\n`);
    }
  } finally {
    await session.release();
  }
  return result;
}

function table(results: ProviderResult[]): string {
  const rows = results.flatMap((result) =>
    result.error
      ? [`| ${result.provider} | – | session failed: ${result.error} |  |  |  |`]
      : result.batches.map((batch) =>
          batch.error
            ? `| ${result.provider} | ${batch.batchSize} | run failed: ${batch.error} |  |  |  |`
            : `| ${result.provider} | ${batch.batchSize} | ${batch.p50Ms?.toFixed(1)} | ${batch.minMs?.toFixed(1)} | ${batch.imagesPerSecond?.toFixed(2)} | ${batch.maxAbsDiffToReference?.toExponential(1) ?? 'reference'} |`,
        ),
  );
  return [
    '| provider | batch | run p50 (ms) | run min (ms) | img/s | max abs diff to the first provider |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const reference = new Map<number, Float32Array>();
  const results: ProviderResult[] = [];
  for (const provider of options.providers) results.push(await measureProvider(options, provider, reference));
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.availableParallelism()}, Node ${process.version}, onnxruntime-node ${ort.env.versions.node ?? '?'}`;
  const report = { date: new Date().toISOString(), machine, model: options.model, runs: options.runs, results };
  mkdirSync(path.dirname(options.json), { recursive: true });
  writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `\n${machine}\nmodel ${options.model}, ${options.runs} timed runs after 2 warm-ups\n\n${table(results)}\n\nwrote ${options.json}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
