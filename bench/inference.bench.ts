/**
 * Inference: raw onnxruntime-node `session.run` against the service's end-to-end `inspect` over
 * HTTP, for the bundled demo model and the full-size AST-MFR architecture, in one run.
 *
 *   npm run bench:inference
 *   node dist/bench/inference.bench.js --full models/full/ast-mfr.full.onnx --seconds 20
 *
 * Flags: --demo <onnx> (default models/demo/model.onnx), --full <onnx> (default: the first
 * models/**\/*.full.onnx, made by `.venv-training/bin/python bench/export_full_model.py`; skipped
 * when there is none), --seconds <s> per measurement (default 15), --workers <n> the service's
 * INFERENCE_WORKERS (default 1), --models demo,full (default both), --json <file> (default
 * bench/out/inference.json). INFERENCE_* variables set for this command reach the service
 * (e.g. INFERENCE_THREAD_NICE=0, INFERENCE_RESIZE=sharp-linear), except those the bench sets
 * itself.
 *
 * --models full,full-int8 (--full-int8 <onnx>, default: the first models/**\/*.int8.full.onnx, made by
 * `bench/export_full_model.py --int8`) adds a precision section before the models' measurements:
 * the fp32 and the INT8 file's raw `session.run` at batch 1 and 8, in pairs whose order alternates
 * (ratio of the medians, target INT8 ÷ fp32 ≤ 0.5 at batch 1 on CPU), and the Spearman rank
 * correlation of their image scores on the same 64 random inputs; each model is then measured
 * through the service as usual.
 *
 * --resize pil-bilinear,sharp-linear adds a section before the models' measurements: the
 * service's pre-processing (src/inference/preprocess-pool.ts with PREPROCESS_WORKERS threads,
 * default 1: decode, resize to the model's input, normalise, exactly what ModelRunner runs for
 * every inspection and evaluation image) of generated images of --resize-sizes (default
 * 256,1024,4096, squares) with each method, interleaved: rounds alternate the methods (and their
 * order); each round times sequential images (latency), 8 images in flight (throughput) and the
 * resize alone on the decoded image. Ratios are first method ÷ second. --resize-only skips the
 * models' measurements (the models' files still give the input sizes).
 *
 * Raw: one InferenceSession in this process using every core (graph optimisation "all",
 * sequential, intra-op threads = available cores, no spinning: the options of the service's
 * workers with INFERENCE_WORKERS=1), on a random normalised input.
 * Service: the real server (`dist/src/main.js`) with PostgreSQL and S3 (s3rver) in a process of
 * their own, as in a deployment; the model registered and activated over HTTP, and
 * `inspect(categoryId, imageId)` and `inspectBatch(categoryId, imageIds)` on 32 generated images
 * of the model's input size.
 *
 * The machines this runs on are shared, and their load drifts during a run, so raw and service
 * are measured interleaved, in phases: latency as pairs (one raw `session.run`, then one
 * sequential `inspect`); throughput as alternating rounds (raw batches of the best size, then the
 * service under 16 concurrent `inspect` clients); batch as alternating rounds of the same length
 * (raw batches again, then sequential `inspectBatch` calls of 32 images each); `health` latency
 * sampled every 20 ms under the 16-client load. Ratios are of the medians of the pairs (and the
 * overhead the difference of those medians) and of the summed rounds. The machine's CPU busy
 * share (aggregate `cpu` line of /proc/stat, iowait counted as idle) and load average are read at
 * the start and end of each model's measurement, the bench's own client, server and S3 included.
 *
 * Targets (the table's header says which applies to which model): demo model, `inspect` p50
 * minus raw p50 ≤ 5 ms at concurrency 1, 16-client throughput ≥ 0.5× raw best batch,
 * `inspectBatch` of 32 ≥ 0.8× raw; full-size model, `inspect` p50 ÷ raw p50 ≤ 1.05, 16-client
 * throughput ≥ 0.95× raw; both, `health` p99 < 20 ms under the 16-client load.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../src/config/config';
import { describeOnnxFile } from '../src/inference';
import {
  decodeRgb,
  RESIZE_METHODS,
  resizeRgbPilBilinear,
  resizeRgbSharpLinear,
  type ResizeMethod,
} from '../src/inference/preprocess';
import { PreprocessPool } from '../src/inference/preprocess-pool';
import {
  busyPercent,
  Client,
  generatedImages,
  prepareCategory,
  readCpuTimes,
  startInfrastructure,
  startService,
  type InfrastructureInfo,
} from './service';
import { percentile, PROJECT_ROOT, sum, type Child } from './support';

const BATCH_SIZES = [1, 2, 4, 8, 16];
const CONCURRENCY = 16;
const HEALTH_INTERVAL_MS = 20;
/** Alternating raw / service rounds of the throughput measurement. */
const THROUGHPUT_ROUNDS = 3;
/** Dataset images per `inspectBatch` call (the server's INSPECT_BATCH_MAX_IMAGES is set to it). */
const INSPECT_BATCH_IMAGES = 32;
/** Latency pairs measured at least, however long they take: a median of fewer says little. */
const MIN_LATENCY_PAIRS = 25;

type ModelChoice = 'demo' | 'full' | 'full-int8';
const MODEL_CHOICES: readonly ModelChoice[] = ['demo', 'full', 'full-int8'];

interface Options {
  models: ModelChoice[];
  demo: string;
  full: string | null;
  fullInt8: string | null;
  seconds: number;
  workers: number;
  json: string;
  /** Resize methods to compare (--resize); empty: no pre-processing section. */
  resize: ResizeMethod[];
  /** Square sizes of the images the pre-processing section resizes (--resize-sizes). */
  resizeSizes: number[];
  resizeOnly: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (flag: string): string | undefined => {
    const index = argv.indexOf(flag);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const seconds = Number(value('--seconds') ?? 15);
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  const workers = Number(value('--workers') ?? 1);
  if (!Number.isInteger(workers) || workers < 1) throw new Error('--workers must be a positive integer');
  const models = (value('--models') ?? 'demo,full').split(',');
  if (!models.every((model): model is ModelChoice => (MODEL_CHOICES as readonly string[]).includes(model)))
    throw new Error(`--models takes a comma-separated list of ${MODEL_CHOICES.join(', ')}`);
  const resize = (value('--resize') ?? '').split(',').filter((method) => method.length > 0);
  if (!resize.every((method): method is ResizeMethod => (RESIZE_METHODS as readonly string[]).includes(method)))
    throw new Error(`--resize takes a comma-separated list of ${RESIZE_METHODS.join(', ')}`);
  const resizeSizes = (value('--resize-sizes') ?? '256,1024,4096').split(',').map(Number);
  if (!resizeSizes.every((size) => Number.isInteger(size) && size >= 32 && size <= 4096))
    throw new Error('--resize-sizes takes square sizes from 32 to 4096, comma-separated');
  const resizeOnly = argv.includes('--resize-only');
  if (resizeOnly && resize.length === 0) throw new Error('--resize-only needs --resize');
  return {
    resize,
    resizeSizes,
    resizeOnly,
    models,
    demo: path.resolve(value('--demo') ?? path.join(PROJECT_ROOT, 'models', 'demo', 'model.onnx')),
    full: value('--full') ? path.resolve(value('--full') as string) : findFullModel('fp32'),
    fullInt8: value('--full-int8') ? path.resolve(value('--full-int8') as string) : findFullModel('int8'),
    seconds,
    workers,
    json: path.resolve(value('--json') ?? path.join(PROJECT_ROOT, 'bench', 'out', 'inference.json')),
  };
}

function findFullModel(precision: 'fp32' | 'int8'): string | null {
  const directory = path.join(PROJECT_ROOT, 'models');
  if (!existsSync(directory)) return null;
  const found = (readdirSync(directory, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((entry) => entry.endsWith('.full.onnx') && entry.endsWith('.int8.full.onnx') === (precision === 'int8'))
    .sort();
  return found[0] ? path.join(directory, found[0]) : null;
}

// ---------------------------------------------------------------------------------------------
// Raw onnxruntime-node
// ---------------------------------------------------------------------------------------------

class RawSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputSize: readonly [number, number],
  ) {}

  static async create(modelPath: string, inputSize: readonly [number, number]): Promise<RawSession> {
    const session = await ort.InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: os.availableParallelism(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    return new RawSession(session, inputSize);
  }

  tensor(batch: number): ort.Tensor {
    const [height, width] = this.inputSize;
    const data = new Float32Array(batch * 3 * height * width);
    for (let i = 0; i < data.length; i++) data[i] = Math.random() * 4 - 2;
    return new ort.Tensor('float32', data, [batch, 3, height, width]);
  }

  /** The image scores of one `session.run`. */
  async scores(tensor: ort.Tensor): Promise<Float32Array> {
    const outputs = await this.session.run({ image: tensor });
    return outputs.score?.data as Float32Array;
  }

  /** Milliseconds of one `session.run`. */
  async time(tensor: ort.Tensor): Promise<number> {
    const started = performance.now();
    await this.session.run({ image: tensor });
    return performance.now() - started;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

interface BatchSweep {
  batched: Array<{ batchSize: number; msPerBatch: number; throughput: number; runs: number }>;
  best: { batchSize: number; throughput: number };
}

/** Throughput per batch size, up to the point where bigger batches stop paying. */
async function sweepBatchSizes(raw: RawSession, budgetMs: number): Promise<BatchSweep> {
  const batched: BatchSweep['batched'] = [];
  for (const batchSize of BATCH_SIZES) {
    const tensor = raw.tensor(batchSize);
    await raw.time(tensor);
    const times: number[] = [];
    const deadline = performance.now() + budgetMs;
    while (times.length < 2 || performance.now() < deadline) times.push(await raw.time(tensor));
    const msPerBatch = sum(times) / times.length;
    const throughput = (1000 * batchSize) / msPerBatch;
    batched.push({ batchSize, msPerBatch, throughput, runs: times.length });
    if (throughput < 0.9 * Math.max(...batched.map((entry) => entry.throughput))) break;
  }
  const best = batched.reduce((a, b) => (b.throughput > a.throughput ? b : a));
  return { batched, best: { batchSize: best.batchSize, throughput: best.throughput } };
}

// ---------------------------------------------------------------------------------------------
// fp32 against INT8 (--models full,full-int8)
// ---------------------------------------------------------------------------------------------

const PRECISION_BATCHES = [1, 8];
const RANK_INPUTS = 64;

interface PrecisionReport {
  fp32: string;
  int8: string;
  batches: Array<{ batchSize: number; pairs: number; fp32P50: number; int8P50: number; ratio: number }>;
  /** Spearman rank correlation of the two files' image scores on the same random inputs. */
  scoreRankCorrelation: number;
  maxAbsScoreDifference: number;
  cpu: { busyPercent: number | null; loadAverage: number[] };
}

/** Ranks (1-based, ties averaged) for Spearman's correlation. */
function ranks(values: readonly number[]): number[] {
  const order = values.map((value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
  const result = new Array<number>(values.length);
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]?.value === order[start]?.value) end++;
    for (let k = start; k <= end; k++) result[(order[k] as { index: number }).index] = (start + end) / 2 + 1;
    start = end + 1;
  }
  return result;
}

function pearson(a: readonly number[], b: readonly number[]): number {
  const meanA = sum(a) / a.length;
  const meanB = sum(b) / b.length;
  let covariance = 0;
  let varianceA = 0;
  let varianceB = 0;
  for (let i = 0; i < a.length; i++) {
    const da = (a[i] as number) - meanA;
    const db = (b[i] as number) - meanB;
    covariance += da * db;
    varianceA += da * da;
    varianceB += db * db;
  }
  return covariance / Math.sqrt(varianceA * varianceB);
}

async function benchPrecision(fp32File: string, int8File: string, seconds: number): Promise<PrecisionReport> {
  const { inputSize } = describeOnnxFile(readFileSync(fp32File)).metadata;
  const fp32 = await RawSession.create(fp32File, inputSize);
  const int8 = await RawSession.create(int8File, inputSize);
  const cpuStart = readCpuTimes();
  try {
    const batches: PrecisionReport['batches'] = [];
    for (const batchSize of PRECISION_BATCHES) {
      const tensor = fp32.tensor(batchSize);
      await fp32.time(tensor);
      await int8.time(tensor);
      const fp32Times: number[] = [];
      const int8Times: number[] = [];
      const deadline = performance.now() + (seconds * 1000) / PRECISION_BATCHES.length;
      // Pairs, the first of each alternating: a load change hits both sides alike.
      while (fp32Times.length < 5 || performance.now() < deadline) {
        if (fp32Times.length % 2 === 0) {
          fp32Times.push(await fp32.time(tensor));
          int8Times.push(await int8.time(tensor));
        } else {
          int8Times.push(await int8.time(tensor));
          fp32Times.push(await fp32.time(tensor));
        }
      }
      const fp32P50 = percentile(fp32Times, 50) / batchSize;
      const int8P50 = percentile(int8Times, 50) / batchSize;
      batches.push({ batchSize, pairs: fp32Times.length, fp32P50, int8P50, ratio: int8P50 / fp32P50 });
    }
    const fp32Scores: number[] = [];
    const int8Scores: number[] = [];
    for (let done = 0; done < RANK_INPUTS; done += 8) {
      const tensor = fp32.tensor(8);
      fp32Scores.push(...(await fp32.scores(tensor)));
      int8Scores.push(...(await int8.scores(tensor)));
    }
    return {
      fp32: path.relative(PROJECT_ROOT, fp32File),
      int8: path.relative(PROJECT_ROOT, int8File),
      batches,
      scoreRankCorrelation: pearson(ranks(fp32Scores), ranks(int8Scores)),
      maxAbsScoreDifference: Math.max(
        ...fp32Scores.map((score, index) => Math.abs(score - (int8Scores[index] as number))),
      ),
      cpu: { busyPercent: busyPercent(cpuStart, readCpuTimes()), loadAverage: os.loadavg() },
    };
  } finally {
    await fp32.release();
    await int8.release();
  }
}

function precisionTable(report: PrecisionReport): string {
  const rows = [
    '| batch | pairs | fp32 ms/image (p50) | INT8 ms/image (p50) | INT8 ÷ fp32 (target ≤ 0.5) |',
    '|---|---|---|---|---|',
    ...report.batches.map(
      (entry) =>
        `| ${entry.batchSize} | ${entry.pairs} | ${entry.fp32P50.toFixed(1)} | ${entry.int8P50.toFixed(1)} | ${entry.ratio.toFixed(3)} |`,
    ),
  ];
  return `${rows.join('\n')}\n\nimage scores on ${RANK_INPUTS} random inputs: Spearman ${report.scoreRankCorrelation.toFixed(4)}, max |INT8 − fp32| ${report.maxAbsScoreDifference.toPrecision(3)}; CPU busy ${report.cpu.busyPercent === null ? 'unknown' : `${report.cpu.busyPercent.toFixed(0)} %`}, load average ${report.cpu.loadAverage.map((load) => load.toFixed(2)).join(' ')}`;
}

// ---------------------------------------------------------------------------------------------
// The service over HTTP
// ---------------------------------------------------------------------------------------------

/** The real server with debug logs (each inspection's time per stage, summarised below). */
async function startServer(
  infrastructure: InfrastructureInfo,
  adminKey: string,
  maxBatchSize: number,
  workers: number,
): Promise<Child & { url: string }> {
  return startService(infrastructure, adminKey, {
    ...inferenceSettingsFromEnvironment(),
    LOG_LEVEL: 'debug',
    MODEL_MAX_BYTES: String(2 ** 31 - 1),
    INFERENCE_WORKERS: String(workers),
    INFERENCE_MAX_BATCH_SIZE: String(maxBatchSize),
    INFERENCE_MAX_QUEUE_LENGTH: String(Math.max(64, 4 * CONCURRENCY)),
    INFERENCE_TIMEOUT_MS: '600000',
    INSPECT_BATCH_MAX_IMAGES: String(INSPECT_BATCH_IMAGES),
  });
}

/** The INFERENCE_* variables this command was given, passed on to the service. */
function inferenceSettingsFromEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('INFERENCE_')));
}

const INSPECT =
  'mutation($c: ID!, $i: ID!) { inspect(input: { categoryId: $c, imageId: $i }) { id score latencyMs anomalyMapUrl overlayUrl maskUrl } }';
const INSPECT_BATCH =
  'mutation($c: ID!, $ids: [ID!]!) { inspectBatch(input: { categoryId: $c, imageIds: $ids }) { id score latencyMs anomalyMapUrl overlayUrl maskUrl } }';

interface Measurements {
  /** outsideServiceP50: median over requests of e2e minus the server's latencyMs (HTTP, GraphQL, auth, the row insert, the client). */
  latency: {
    rawP50: number;
    rawP99: number;
    e2eP50: number;
    e2eP99: number;
    serverP50: number;
    outsideServiceP50: number;
    /** e2eP50 − rawP50: the difference of the medians. */
    overheadP50: number;
    pairs: number;
  };
  throughput: {
    rawBatchSize: number;
    raw: number;
    service: number;
    rounds: Array<{ raw: number; service: number }>;
    e2eP50: number;
    e2eP99: number;
    requests: number;
  };
  /** Alternating rounds: raw batches of the best size, then sequential `inspectBatch` calls of `images` each. */
  batch: {
    images: number;
    rawBatchSize: number;
    raw: number;
    service: number;
    rounds: Array<{ raw: number; service: number }>;
    /** Client wall time of one `inspectBatch` call. */
    callP50: number;
    callP99: number;
    calls: number;
  };
  health: { p50: number; p99: number; max: number; samples: number };
  /** The machine over the whole measurement (null where /proc/stat cannot be read). */
  cpu: { busyPercent: number | null; seconds: number; loadAverageStart: number[]; loadAverageEnd: number[] };
}

/** One alternating round: images and milliseconds of each side, and their rates. */
function throughputRound(rawImages: number, rawMs: number, serviceImages: number, serviceMs: number) {
  return {
    raw: (1000 * rawImages) / rawMs,
    service: (1000 * serviceImages) / serviceMs,
    rawImages,
    rawMs,
    serviceImages,
    serviceMs,
  };
}

async function measure(
  raw: RawSession,
  sweep: BatchSweep,
  client: Client,
  anonymous: Client,
  categoryId: string,
  imageIds: string[],
  seconds: number,
  phase: (name: 'latency' | 'throughput' | 'batch' | 'health' | 'end') => void,
): Promise<Measurements> {
  const cpuAtStart = readCpuTimes();
  const loadAverageStart = os.loadavg();
  const measureStarted = performance.now();
  let next = 0;
  const inspect = async (): Promise<{ ms: number; serverMs: number }> => {
    const started = performance.now();
    const data = await client.request<{ inspect: { latencyMs: number } }>(INSPECT, {
      c: categoryId,
      i: imageIds[next++ % imageIds.length],
    });
    return { ms: performance.now() - started, serverMs: data.inspect.latencyMs };
  };
  let nextBatch = 0;
  const inspectBatch = async (): Promise<number> => {
    const ids = Array.from({ length: INSPECT_BATCH_IMAGES }, () => imageIds[nextBatch++ % imageIds.length]);
    const started = performance.now();
    const data = await client.request<{ inspectBatch: unknown[] }>(INSPECT_BATCH, { c: categoryId, ids });
    if (data.inspectBatch.length !== ids.length)
      throw new Error(`inspectBatch answered ${data.inspectBatch.length} results for ${ids.length} images`);
    return performance.now() - started;
  };
  const single = raw.tensor(1);
  for (let i = 0; i < 3; i++) {
    await inspect();
    await raw.time(single);
  }

  // Latency: pairs of one raw run and one inspect, so both see the same machine load.
  phase('latency');
  const rawTimes: number[] = [];
  const e2eTimes: number[] = [];
  const serverTimes: number[] = [];
  const latencyDeadline = performance.now() + seconds * 1000;
  while (rawTimes.length < MIN_LATENCY_PAIRS || performance.now() < latencyDeadline) {
    rawTimes.push(await raw.time(single));
    const { ms, serverMs } = await inspect();
    e2eTimes.push(ms);
    serverTimes.push(serverMs);
  }

  // Throughput: alternating rounds of raw batches and the service under CONCURRENCY clients.
  phase('throughput');
  const batch = raw.tensor(sweep.best.batchSize);
  const roundMs = (seconds * 1000) / THROUGHPUT_ROUNDS;
  const rounds: Array<ReturnType<typeof throughputRound>> = [];
  const concurrent: number[] = [];
  const health: number[] = [];
  /** One raw round: batches of the best size for at least roundMs (and two batches). */
  const rawRound = async (): Promise<{ rawImages: number; rawMs: number }> => {
    const rawStarted = performance.now();
    let rawImages = 0;
    while (rawImages < 2 * sweep.best.batchSize || performance.now() - rawStarted < roundMs) {
      await raw.time(batch);
      rawImages += sweep.best.batchSize;
    }
    return { rawImages, rawMs: performance.now() - rawStarted };
  };
  for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
    const { rawImages, rawMs } = await rawRound();

    const serviceStarted = performance.now();
    let serviceImages = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (serviceImages < CONCURRENCY || performance.now() - serviceStarted < roundMs) {
          serviceImages += 1;
          concurrent.push((await inspect()).ms);
        }
      }),
    );
    rounds.push(throughputRound(rawImages, rawMs, serviceImages, performance.now() - serviceStarted));
  }

  // Batch: alternating rounds of raw batches and sequential inspectBatch calls of
  // INSPECT_BATCH_IMAGES images (at least one call per round, however long it takes).
  phase('batch');
  const batchRounds: typeof rounds = [];
  const batchCalls: number[] = [];
  for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
    const { rawImages, rawMs } = await rawRound();

    const serviceStarted = performance.now();
    let serviceImages = 0;
    while (serviceImages === 0 || performance.now() - serviceStarted < roundMs) {
      batchCalls.push(await inspectBatch());
      serviceImages += INSPECT_BATCH_IMAGES;
    }
    batchRounds.push(throughputRound(rawImages, rawMs, serviceImages, performance.now() - serviceStarted));
  }

  // Health under the same load, in a phase of its own: its requests cost CPU too, and would
  // otherwise count against the service's throughput.
  phase('health');
  let running = true;
  const load = (async () => {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (running) await inspect();
      }),
    );
    return performance.now() - started;
  })();
  // Let the queue fill before sampling.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const healthStarted = performance.now();
  while (health.length < 50 || performance.now() - healthStarted < roundMs) {
    const started = performance.now();
    await anonymous.request('{ health { status } }');
    health.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, HEALTH_INTERVAL_MS));
  }
  running = false;
  await load;
  phase('end');
  const cpuAtEnd = readCpuTimes();
  const summed = (entries: typeof rounds, images: 'rawImages' | 'serviceImages', ms: 'rawMs' | 'serviceMs'): number =>
    (1000 * sum(entries.map((entry) => entry[images]))) / sum(entries.map((entry) => entry[ms]));
  return {
    latency: {
      rawP50: percentile(rawTimes, 50),
      rawP99: percentile(rawTimes, 99),
      e2eP50: percentile(e2eTimes, 50),
      e2eP99: percentile(e2eTimes, 99),
      serverP50: percentile(serverTimes, 50),
      outsideServiceP50: percentile(
        e2eTimes.map((ms, index) => ms - (serverTimes[index] as number)),
        50,
      ),
      overheadP50: percentile(e2eTimes, 50) - percentile(rawTimes, 50),
      pairs: rawTimes.length,
    },
    throughput: {
      rawBatchSize: sweep.best.batchSize,
      raw: summed(rounds, 'rawImages', 'rawMs'),
      service: summed(rounds, 'serviceImages', 'serviceMs'),
      rounds: rounds.map((round) => ({ raw: round.raw, service: round.service })),
      e2eP50: percentile(concurrent, 50),
      e2eP99: percentile(concurrent, 99),
      requests: concurrent.length,
    },
    batch: {
      images: INSPECT_BATCH_IMAGES,
      rawBatchSize: sweep.best.batchSize,
      raw: summed(batchRounds, 'rawImages', 'rawMs'),
      service: summed(batchRounds, 'serviceImages', 'serviceMs'),
      rounds: batchRounds.map((round) => ({ raw: round.raw, service: round.service })),
      callP50: percentile(batchCalls, 50),
      callP99: percentile(batchCalls, 99),
      calls: batchCalls.length,
    },
    health: {
      p50: percentile(health, 50),
      p99: percentile(health, 99),
      max: Math.max(...health),
      samples: health.length,
    },
    cpu: {
      busyPercent: busyPercent(cpuAtStart, cpuAtEnd),
      seconds: (performance.now() - measureStarted) / 1000,
      loadAverageStart,
      loadAverageEnd: os.loadavg(),
    },
  };
}

const STAGES = [
  'readMs',
  'decodeMs',
  'queueMs',
  'runMs',
  'inferMs',
  'renderMs',
  'storeMs',
  'objectsMs',
  'insertMs',
  'operationMs',
] as const;
type Stage = (typeof STAGES)[number];

/**
 * Medians of the per-stage times the server logged for its inspections ('inspection
 * timings'), and of the whole GraphQL operation of each mutation ('graphql operation',
 * from Apollo's request start to the response: the stages plus resolving the result).
 */
function stageMedians(serverOutput: string): Record<Stage, number> {
  const samples = Object.fromEntries(STAGES.map((stage) => [stage, [] as number[]])) as Record<Stage, number[]>;
  for (const line of serverOutput.split('\n')) {
    const isStages = line.includes('"inspection timings"');
    if (!isStages && !(line.includes('"graphql operation"') && line.includes('"mutation"'))) continue;
    try {
      const entry = JSON.parse(line) as Partial<Record<Stage | 'durationMs', number>>;
      if (!isStages) {
        if (typeof entry.durationMs === 'number') samples.operationMs.push(entry.durationMs);
        continue;
      }
      for (const stage of STAGES) if (typeof entry[stage] === 'number') samples[stage].push(entry[stage] as number);
    } catch {
      // a partial line at the end of the buffer
    }
  }
  return Object.fromEntries(STAGES.map((stage) => [stage, percentile(samples[stage], 50)])) as Record<Stage, number>;
}

// ---------------------------------------------------------------------------------------------

interface ModelReport {
  label: string;
  file: string;
  bytes: number;
  inputSize: readonly [number, number];
  sweep: BatchSweep;
  measurements: Measurements;
  /** Medians of the server's per-stage times, at concurrency 1 and under 16 concurrent clients. */
  serverStagesP50: { concurrency1: Record<Stage, number>; concurrency16: Record<Stage, number> };
  /** latencyP50: e2e ÷ raw p50; throughput: 16 clients ÷ raw; batchThroughput: inspectBatch ÷ raw of its rounds. */
  ratios: { latencyP50: number; throughput: number; batchThroughput: number };
}

async function benchModel(
  label: string,
  modelPath: string,
  options: Options,
  infrastructure: InfrastructureInfo,
): Promise<ModelReport> {
  const { seconds, workers } = options;
  const { metadata } = describeOnnxFile(readFileSync(modelPath));
  process.stdout.write(
    `\n${label}: ${path.relative(PROJECT_ROOT, modelPath)} (input ${metadata.inputSize.join('×')})\n`,
  );
  const raw = await RawSession.create(modelPath, metadata.inputSize);
  try {
    const sweep = await sweepBatchSizes(raw, (seconds * 1000) / 3);
    process.stdout.write(
      `  raw batch sizes: ${sweep.batched.map((entry) => `b=${entry.batchSize} ${entry.throughput.toFixed(1)} img/s`).join(', ')}\n`,
    );
    const adminKey = `bench-${randomBytes(24).toString('hex')}`;
    const server = await startServer(infrastructure, adminKey, sweep.best.batchSize, workers);
    try {
      const client = new Client(server.url, adminKey);
      const { categoryId, imageIds } = await prepareCategory(client, label, modelPath, {
        size: Math.max(...metadata.inputSize),
        count: INSPECT_BATCH_IMAGES,
        seed: 11,
      });
      const offsets: Record<string, number> = {};
      const measurements = await measure(
        raw,
        sweep,
        client,
        new Client(server.url, null),
        categoryId,
        imageIds,
        seconds,
        (name) => (offsets[name] = server.output().length),
      );
      const output = server.output();
      return {
        label,
        file: path.relative(PROJECT_ROOT, modelPath),
        bytes: readFileSync(modelPath).length,
        inputSize: metadata.inputSize,
        sweep,
        measurements,
        serverStagesP50: {
          concurrency1: stageMedians(output.slice(offsets.latency, offsets.throughput)),
          concurrency16: stageMedians(output.slice(offsets.throughput, offsets.batch)),
        },
        ratios: {
          latencyP50: measurements.latency.e2eP50 / measurements.latency.rawP50,
          throughput: measurements.throughput.service / measurements.throughput.raw,
          batchThroughput: measurements.batch.service / measurements.batch.raw,
        },
      };
    } finally {
      await server.stop();
    }
  } finally {
    await raw.release();
  }
}

function table(reports: readonly ModelReport[]): string {
  const rows = [
    `| model | input | raw b=1 p50 / p99 (ms) | e2e c=1 p50 / p99 (ms) | overhead p50 (ms) (target ≤ 5, demo) | e2e ÷ raw p50 (target ≤ 1.05, full) | raw img/s (best batch) | e2e c=16 img/s | ÷ raw (target ≥ 0.5 demo, ≥ 0.95 full) | inspectBatch ×${INSPECT_BATCH_IMAGES} img/s (raw in its rounds) | ÷ raw (target ≥ 0.8, demo) | health p99 under load (target < 20 ms, both) |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { label, inputSize, measurements: m, ratios } of reports) {
    rows.push(
      `| ${label} | ${inputSize.join('×')} | ${m.latency.rawP50.toFixed(1)} / ${m.latency.rawP99.toFixed(1)} | ${m.latency.e2eP50.toFixed(1)} / ${m.latency.e2eP99.toFixed(1)} | ` +
        `${m.latency.overheadP50.toFixed(1)} | ${ratios.latencyP50.toFixed(3)} | ${m.throughput.raw.toFixed(2)} (b=${m.throughput.rawBatchSize}) | ${m.throughput.service.toFixed(2)} | ${ratios.throughput.toFixed(3)} | ` +
        `${m.batch.service.toFixed(2)} (${m.batch.raw.toFixed(2)}) | ${ratios.batchThroughput.toFixed(3)} | ${m.health.p99.toFixed(1)} ms |`,
    );
  }
  return rows.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The service's pre-processing with each resize method (--resize)
// ---------------------------------------------------------------------------------------------

/** Images in flight in the throughput part of a pre-processing round. */
const RESIZE_CONCURRENCY = 8;
/** Rounds per image size; the methods alternate within each, their order alternating too. */
const RESIZE_ROUNDS = 4;
/** Generated images per size (the rounds cycle through them). */
const RESIZE_IMAGES = 4;

interface ResizeMethodResult {
  method: ResizeMethod;
  /** One image at a time through the pool: decode, resize, normalise (ms). */
  latencyP50: number;
  latencyP99: number;
  latencyRuns: number;
  /** RESIZE_CONCURRENCY images in flight through the pool (images/s over the summed rounds). */
  throughput: number;
  throughputImages: number;
  /** The resize alone of an already decoded image, on the bench's main thread (ms, median). */
  resizeOnlyP50: number;
}

interface ResizeReport {
  imageSize: number;
  inputSize: readonly [number, number];
  threads: number;
  results: ResizeMethodResult[];
  /**
   * First method ÷ second (null with one method): latency and resize > 1 mean the first is
   * slower, throughput < 1; resizeOnlyP50 null when the image already has the input size.
   */
  ratios: { latencyP50: number; throughput: number; resizeOnlyP50: number | null } | null;
  cpu: {
    /** The machine's CPU busy share (/proc/stat) over the measurement. */
    busyPercent: number | null;
    /** This process's CPU time (every thread: main, pre-processing worker, libvips) ÷ wall time. */
    processCpuPercent: number;
    seconds: number;
    loadAverageStart: number[];
    loadAverageEnd: number[];
  };
}

async function benchResize(
  methods: readonly ResizeMethod[],
  imageSize: number,
  inputSize: readonly [number, number],
  seconds: number,
): Promise<ResizeReport> {
  const config = loadConfig({});
  const threads =
    process.env.PREPROCESS_WORKERS !== undefined
      ? Number(process.env.PREPROCESS_WORKERS)
      : config.inspections.preprocessWorkers;
  const images = await generatedImages({ size: imageSize, count: RESIZE_IMAGES, seed: 23 });
  const decoded = await Promise.all(images.map((bytes) => decodeRgb(bytes, config.datasets.imageMaxPixels)));
  const [height, width] = inputSize;
  const options = (resize: ResizeMethod) => ({
    inputSize,
    mean: [0.485, 0.456, 0.406] as const,
    std: [0.229, 0.224, 0.225] as const,
    resize,
    maxPixels: config.datasets.imageMaxPixels,
  });
  const pool = new PreprocessPool(threads);
  const samples = new Map(
    methods.map((method) => [
      method,
      { latency: [] as number[], resizeOnly: [] as number[], throughputImages: 0, throughputMs: 0 },
    ]),
  );
  const cpuAtStart = readCpuTimes();
  const processCpuAtStart = process.cpuUsage();
  const loadAverageStart = os.loadavg();
  const started = performance.now();
  try {
    for (const method of methods) await pool.preprocess(images[0] as Buffer, options(method)); // warm
    const partMs = (seconds * 1000) / RESIZE_ROUNDS / 3;
    let next = 0;
    for (let round = 0; round < RESIZE_ROUNDS; round++) {
      const order = round % 2 === 0 ? methods : [...methods].reverse();
      for (const method of order) {
        const sample = samples.get(method) as NonNullable<ReturnType<typeof samples.get>>;
        const settings = options(method);
        let deadline = performance.now() + partMs;
        for (let runs = 0; runs < 3 || performance.now() < deadline; runs++) {
          const begun = performance.now();
          await pool.preprocess(images[next++ % images.length] as Buffer, settings);
          sample.latency.push(performance.now() - begun);
        }
        const begun = performance.now();
        let done = 0;
        await Promise.all(
          Array.from({ length: RESIZE_CONCURRENCY }, async () => {
            while (done < RESIZE_CONCURRENCY || performance.now() - begun < partMs) {
              done += 1;
              await pool.preprocess(images[next++ % images.length] as Buffer, settings);
            }
          }),
        );
        sample.throughputImages += done;
        sample.throughputMs += performance.now() - begun;
        deadline = performance.now() + partMs;
        for (let runs = 0; runs < 3 || performance.now() < deadline; runs++) {
          const image = decoded[next++ % decoded.length] as (typeof decoded)[number];
          const begun = performance.now();
          if (method === 'pil-bilinear') resizeRgbPilBilinear(image, width, height);
          else await resizeRgbSharpLinear(image, width, height);
          sample.resizeOnly.push(performance.now() - begun);
        }
      }
    }
  } finally {
    await pool.close();
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const processCpu = process.cpuUsage(processCpuAtStart);
  const results = methods.map((method): ResizeMethodResult => {
    const sample = samples.get(method) as NonNullable<ReturnType<typeof samples.get>>;
    return {
      method,
      latencyP50: percentile(sample.latency, 50),
      latencyP99: percentile(sample.latency, 99),
      latencyRuns: sample.latency.length,
      throughput: (1000 * sample.throughputImages) / sample.throughputMs,
      throughputImages: sample.throughputImages,
      resizeOnlyP50: percentile(sample.resizeOnly, 50),
    };
  });
  const [first, second] = results;
  return {
    imageSize,
    inputSize,
    threads,
    results,
    ratios:
      first && second
        ? {
            latencyP50: first.latencyP50 / second.latencyP50,
            throughput: first.throughput / second.throughput,
            resizeOnlyP50:
              imageSize === inputSize[0] && imageSize === inputSize[1]
                ? null
                : first.resizeOnlyP50 / second.resizeOnlyP50,
          }
        : null,
    cpu: {
      busyPercent: busyPercent(cpuAtStart, readCpuTimes()),
      processCpuPercent: (100 * (processCpu.user + processCpu.system)) / 1e6 / wallSeconds,
      seconds: wallSeconds,
      loadAverageStart,
      loadAverageEnd: os.loadavg(),
    },
  };
}

function resizeTable(reports: readonly ResizeReport[]): string {
  const rows = [
    '| image → input | method | pre-process c=1 p50 / p99 (ms) | c=8 img/s | resize alone p50 (ms) | CPU busy / bench process CPU ÷ wall | load average |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const report of reports) {
    const where = `${report.imageSize}² → ${report.inputSize.join('×')}`;
    const cpu = `${report.cpu.busyPercent === null ? '?' : report.cpu.busyPercent.toFixed(0)} % / ${report.cpu.processCpuPercent.toFixed(0)} %`;
    const load = `${report.cpu.loadAverageStart.map((load) => load.toFixed(2)).join(' ')} → ${report.cpu.loadAverageEnd.map((load) => load.toFixed(2)).join(' ')}`;
    for (const result of report.results)
      rows.push(
        `| ${where} | ${result.method} | ${result.latencyP50.toFixed(2)} / ${result.latencyP99.toFixed(2)} | ${result.throughput.toFixed(1)} | ${result.resizeOnlyP50.toFixed(2)} | ${cpu} | ${load} |`,
      );
    if (report.ratios)
      rows.push(
        `| ${where} | **${report.results[0]?.method} ÷ ${report.results[1]?.method}** | **${report.ratios.latencyP50.toFixed(2)}×** | **${report.ratios.throughput.toFixed(2)}×** | ${report.ratios.resizeOnlyP50 === null ? '— (no resize)' : `**${report.ratios.resizeOnlyP50.toFixed(2)}×**`} | | |`,
      );
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const loadAtStart = os.loadavg();
  const models: Array<[string, string]> = [];
  if (options.models.includes('demo')) {
    if (existsSync(options.demo)) models.push(['demo', options.demo]);
    else process.stdout.write(`demo model ${options.demo} is missing (npm run demo:model); skipped\n`);
  }
  if (options.models.includes('full')) {
    if (options.full && existsSync(options.full)) models.push(['full-size AST-MFR', options.full]);
    else
      process.stdout.write(
        'full-size model not found (`.venv-training/bin/python bench/export_full_model.py`, or --full <onnx>); skipped\n',
      );
  }
  if (options.models.includes('full-int8')) {
    if (options.fullInt8 && existsSync(options.fullInt8)) models.push(['full-size AST-MFR INT8', options.fullInt8]);
    else
      process.stdout.write(
        'full-size INT8 model not found (`.venv-training/bin/python bench/export_full_model.py --int8`, or --full-int8 <onnx>); skipped\n',
      );
  }
  if (models.length === 0) throw new Error('no model to benchmark');

  let precision: PrecisionReport | null = null;
  const fp32Model = models.find(([label]) => label === 'full-size AST-MFR')?.[1];
  const int8Model = models.find(([label]) => label === 'full-size AST-MFR INT8')?.[1];
  if (fp32Model && int8Model) {
    process.stdout.write(`\nfp32 against INT8, raw session.run, interleaved pairs\n`);
    precision = await benchPrecision(fp32Model, int8Model, options.seconds);
    process.stdout.write(`${precisionTable(precision)}\n`);
  }

  const resizeReports: ResizeReport[] = [];
  if (options.resize.length > 0) {
    const inputSizes = new Map<string, readonly [number, number]>();
    for (const [, file] of models) {
      const { inputSize } = describeOnnxFile(readFileSync(file)).metadata;
      inputSizes.set(inputSize.join('×'), inputSize);
    }
    process.stdout.write(
      `
pre-processing (PreprocessPool), ${options.resize.join(' vs ')} interleaved, images ${options.resizeSizes.join(', ')}² → ${[...inputSizes.keys()].join(', ')}
`,
    );
    for (const inputSize of inputSizes.values())
      for (const imageSize of options.resizeSizes) {
        const report = await benchResize(options.resize, imageSize, inputSize, options.seconds);
        resizeReports.push(report);
        process.stdout.write(`${resizeTable([report]).split('\n').slice(2).join('\n')}\n`);
      }
  }

  const reports: ModelReport[] = [];
  if (!options.resizeOnly) {
    const infrastructure = await startInfrastructure();
    try {
      for (const [label, file] of models) reports.push(await benchModel(label, file, options, infrastructure.info));
    } finally {
      await infrastructure.stop();
    }
  }

  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.availableParallelism()} (load average ${loadAtStart.map((load) => load.toFixed(2)).join(' ')} at the start, ${os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(
      ' ',
    )} at the end), Node ${process.version}, onnxruntime-node ${ort.env.versions.common}; service INFERENCE_WORKERS=${options.workers}${Object.entries(
    inferenceSettingsFromEnvironment(),
  )
    .map(([name, value]) => `, ${name}=${value}`)
    .join('')}`;
  process.stdout.write(`\n${machine}\n`);
  if (resizeReports.length > 0)
    process.stdout.write(
      `\npre-processing, PREPROCESS_WORKERS=${resizeReports[0]?.threads} (the service's pool, decode + resize + normalise)\n\n${resizeTable(resizeReports)}\n`,
    );
  if (precision) process.stdout.write(`\nfull-size AST-MFR, fp32 against INT8 (raw)\n\n${precisionTable(precision)}\n`);
  if (reports.length > 0) process.stdout.write(`\n${table(reports)}\n`);
  for (const report of reports) {
    const { measurements: m, serverStagesP50: stages } = report;
    process.stdout.write(
      `\n${report.label}: ${m.latency.pairs} latency pairs; server-side latencyMs p50 ${m.latency.serverP50.toFixed(1)} ms, e2e - latencyMs p50 ${m.latency.outsideServiceP50.toFixed(1)} ms; ` +
        `server stages p50 (ms) at c=1: ${STAGES.map((stage) => `${stage.replace('Ms', '')} ${stages.concurrency1[stage].toFixed(1)}`).join(', ')}; ` +
        `at c=16: ${STAGES.map((stage) => `${stage.replace('Ms', '')} ${stages.concurrency16[stage].toFixed(1)}`).join(', ')}; ` +
        `throughput rounds raw/service img/s ${m.throughput.rounds.map((round) => `${round.raw.toFixed(2)}/${round.service.toFixed(2)}`).join(', ')}; ` +
        `c=16 e2e p50 ${m.throughput.e2eP50.toFixed(0)} ms p99 ${m.throughput.e2eP99.toFixed(0)} ms over ${m.throughput.requests} requests; ` +
        `batch rounds raw/inspectBatch img/s ${m.batch.rounds.map((round) => `${round.raw.toFixed(2)}/${round.service.toFixed(2)}`).join(', ')}; ` +
        `inspectBatch ×${m.batch.images} call p50 ${m.batch.callP50.toFixed(0)} ms p99 ${m.batch.callP99.toFixed(0)} ms over ${m.batch.calls} calls; ` +
        `health p50 ${m.health.p50.toFixed(1)} ms, max ${m.health.max.toFixed(1)} ms over ${m.health.samples} samples; ` +
        `CPU busy ${m.cpu.busyPercent === null ? 'unknown (no /proc/stat)' : `${m.cpu.busyPercent.toFixed(0)} %`} over the measurement's ${m.cpu.seconds.toFixed(0)} s, ` +
        `load average ${m.cpu.loadAverageStart.map((load) => load.toFixed(2)).join(' ')} at its start, ${m.cpu.loadAverageEnd.map((load) => load.toFixed(2)).join(' ')} at its end\n`,
    );
  }
  mkdirSync(path.dirname(options.json), { recursive: true });
  writeFileSync(
    options.json,
    `${JSON.stringify({ machine, date: new Date().toISOString(), seconds: options.seconds, workers: options.workers, reports, resize: resizeReports, precision }, null, 2)}\n`,
  );
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), options.json)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
