/**
 * Overload: a burst of concurrent `inspect` calls on the demo model against the server's memory.
 *
 *   npm run bench:overload
 *   node dist/bench/overload.bench.js --requests 300 --rounds 2 --inputs images,uploads
 *
 * Flags: --requests <n> concurrent `inspect` calls per burst (default 300), --rounds <n>
 * (default 2), --inputs images,uploads (default both), --model <onnx> (default
 * models/demo/model.onnx), --off <n> the INSPECT_MAX_IN_FLIGHT of the "off" runs (default
 * 100000: admission control that never refuses), --size <px> the generated images' side (default:
 * the size the model was trained on, 256 for the demo model), --json <file> (default
 * bench/out/overload.json).
 * INSPECT_* and INFERENCE_* variables set for this command reach the service (e.g.
 * INSPECT_MAX_IN_FLIGHT=32 for the "on" runs; unset, the service default).
 *
 * The real server (`dist/src/main.js`, production settings) with PostgreSQL and S3 in a process of
 * their own; a category of generated images of the size the demo model was trained on, the model
 * registered and activated over HTTP. Each burst gets a fresh server: ready (model warm), five
 * sequential inspects, for uploads the inspection uploads created and PUT, then its idle RSS
 * (median of /proc/<pid>/status VmRSS sampled every 20 ms for 2 s), then `--requests` concurrent
 * `inspect` calls (dataset images by imageId, or one inspection upload each by uploadId) with
 * VmRSS sampled every 20 ms from a thread of its own until the last answer and 1 s after. Each
 * burst prints its answers (OK, QUEUE_FULL, other codes) and peak ÷ idle RSS, with the machine's
 * CPU busy share (/proc/stat, iowait as idle) and load average over it.
 *
 * Admission on (INSPECT_MAX_IN_FLIGHT as configured) and off (--off) alternate within each round,
 * in the opposite order the next round, so both see the same machine.
 *
 * Target: only OK and QUEUE_FULL, peak RSS ≤ 2× idle RSS.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describeOnnxFile } from '../src/inference';
import { demoGeneratorSettings } from '../src/seed/demo-seed';
import {
  busyPercent,
  Client,
  prepareCategory,
  put,
  readCpuTimes,
  startInfrastructure,
  startService,
  waitUntilReady,
  type InfrastructureInfo,
  type UploadTarget,
} from './service';
import { percentile, PROJECT_ROOT } from './support';

const SAMPLE_INTERVAL_MS = 20;
const IDLE_SAMPLE_MS = 2000;
const AFTER_BURST_MS = 1000;
/** Distinct dataset images the bursts cycle through. */
const DATASET_IMAGES = 16;

type Input = 'images' | 'uploads';
type Variant = 'on' | 'off';

interface Options {
  requests: number;
  rounds: number;
  inputs: Input[];
  model: string;
  off: number;
  size: number | null;
  json: string;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (flag: string): string | undefined => {
    const index = argv.indexOf(flag);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const positive = (flag: string, fallback: number): number => {
    const parsed = Number(value(flag) ?? fallback);
    if (!Number.isInteger(parsed) || parsed < 1) throw new Error(`${flag} must be a positive integer`);
    return parsed;
  };
  const inputs = (value('--inputs') ?? 'images,uploads').split(',');
  if (!inputs.every((input): input is Input => input === 'images' || input === 'uploads'))
    throw new Error('--inputs takes images, uploads or images,uploads');
  return {
    requests: positive('--requests', 300),
    rounds: positive('--rounds', 2),
    inputs,
    model: path.resolve(value('--model') ?? path.join(PROJECT_ROOT, 'models', 'demo', 'model.onnx')),
    off: positive('--off', 100_000),
    size: value('--size') === undefined ? null : positive('--size', 0),
    json: path.resolve(value('--json') ?? path.join(PROJECT_ROOT, 'bench', 'out', 'overload.json')),
  };
}

/** The INSPECT_* and INFERENCE_* variables this command was given, passed on to the service. */
function serviceSettingsFromEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name.startsWith('INSPECT_') || name.startsWith('INFERENCE_')),
  );
}

// The sampler runs in a thread of its own: the bench's event loop is busy with the burst's
// requests, and a late sample could miss the peak.
const SAMPLER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const stop = new Int32Array(workerData.stop);
const samples = [];
while (Atomics.load(stop, 0) === 0) {
  try {
    const match = /VmRSS:\\s+(\\d+) kB/.exec(readFileSync('/proc/' + workerData.pid + '/status', 'utf8'));
    if (match) samples.push(Number(match[1]));
  } catch {
    break;
  }
  Atomics.wait(stop, 0, 0, workerData.intervalMs);
}
parentPort.postMessage(samples);
`;

/** VmRSS of `pid` (KiB) every `intervalMs` until stop(). */
function sampleRss(pid: number, intervalMs = SAMPLE_INTERVAL_MS): { stop(): Promise<number[]> } {
  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(SAMPLER_SOURCE, { eval: true, workerData: { pid, intervalMs, stop } });
  const samples = new Promise<number[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    async stop() {
      Atomics.store(new Int32Array(stop), 0, 1);
      Atomics.notify(new Int32Array(stop), 0);
      const values = await samples;
      await worker.terminate();
      return values;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (kib: number): number => kib / 1024;

const INSPECT_IMAGE = 'mutation($c: ID!, $i: ID!) { inspect(input: { categoryId: $c, imageId: $i }) { id score } }';
const INSPECT_UPLOAD = 'mutation($c: ID!, $u: ID!) { inspect(input: { categoryId: $c, uploadId: $u }) { id score } }';
const REQUEST_UPLOAD =
  'mutation($input: RequestInspectionUploadInput!) { requestInspectionUpload(input: $input) { uploadId url headers { name value } } }';

interface Burst {
  round: number;
  variant: Variant;
  maxInFlight: string;
  input: Input;
  requests: number;
  idleRssMiB: number;
  peakRssMiB: number;
  peakOverIdle: number;
  answers: Record<string, number>;
  seconds: number;
  rssSamples: number;
  cpuBusyPercent: number | null;
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

interface Category {
  categoryId: string;
  imageIds: string[];
  files: Buffer[];
}

async function runBurst(
  infrastructure: InfrastructureInfo,
  adminKey: string,
  category: Category,
  options: Options,
  round: number,
  variant: Variant,
  input: Input,
): Promise<Burst> {
  const env = serviceSettingsFromEnvironment();
  if (variant === 'off') env.INSPECT_MAX_IN_FLIGHT = String(options.off);
  const server = await startService(infrastructure, adminKey, env);
  try {
    await waitUntilReady(server.baseUrl);
    const client = new Client(server.url, adminKey);
    const { categoryId, imageIds, files } = category;
    for (let i = 0; i < 5; i++)
      await client.request(INSPECT_IMAGE, { c: categoryId, i: imageIds[i % imageIds.length] });
    let uploads: string[] = [];
    if (input === 'uploads') {
      uploads = await Promise.all(
        Array.from({ length: options.requests }, async (_, index) => {
          const bytes = files[index % files.length] as Buffer;
          const target = await client.request<{ requestInspectionUpload: UploadTarget }>(REQUEST_UPLOAD, {
            input: { contentType: 'image/png', byteSize: bytes.length },
          });
          await put(target.requestInspectionUpload.url, target.requestInspectionUpload.headers, bytes);
          return target.requestInspectionUpload.uploadId;
        }),
      );
    }
    await sleep(1000);
    const idleSampler = sampleRss(server.pid);
    await sleep(IDLE_SAMPLE_MS);
    const idle = percentile(await idleSampler.stop(), 50);

    const cpuAtStart = readCpuTimes();
    const loadAverageStart = os.loadavg();
    const sampler = sampleRss(server.pid);
    const started = performance.now();
    const answers: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: options.requests }, async (_, index) => {
        let answer: string;
        try {
          const result =
            input === 'images'
              ? await client.result(INSPECT_IMAGE, { c: categoryId, i: imageIds[index % imageIds.length] })
              : await client.result(INSPECT_UPLOAD, { c: categoryId, u: uploads[index] });
          answer = result.errors?.length ? (result.errors[0]?.extensions?.code ?? 'NO_CODE') : 'OK';
        } catch (error) {
          answer = `NETWORK ${error instanceof Error ? error.message : String(error)}`;
        }
        answers[answer] = (answers[answer] ?? 0) + 1;
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const cpuAtEnd = readCpuTimes();
    await sleep(AFTER_BURST_MS);
    const samples = await sampler.stop();
    const peak = Math.max(...samples);
    if (server.child.exitCode !== null || server.child.signalCode !== null)
      answers[`SERVER EXITED ${server.child.exitCode ?? server.child.signalCode}`] = 1;
    return {
      round,
      variant,
      maxInFlight: env.INSPECT_MAX_IN_FLIGHT ?? 'default (64)',
      input,
      requests: options.requests,
      idleRssMiB: mib(idle),
      peakRssMiB: mib(peak),
      peakOverIdle: peak / idle,
      answers,
      seconds,
      rssSamples: samples.length,
      cpuBusyPercent: busyPercent(cpuAtStart, cpuAtEnd),
      loadAverageStart,
      loadAverageEnd: os.loadavg(),
    };
  } finally {
    await server.stop();
  }
}

function describeAnswers(answers: Record<string, number>): string {
  const { OK = 0, QUEUE_FULL = 0, ...other } = answers;
  const others = Object.entries(other).map(([code, count]) => `${code} ${count}`);
  return `${OK} | ${QUEUE_FULL} | ${others.length > 0 ? others.join(', ') : '0'}`;
}

function table(bursts: readonly Burst[]): string {
  const rows = [
    '| round | admission | INSPECT_MAX_IN_FLIGHT | input | OK | QUEUE_FULL | other | idle RSS | peak RSS | peak ÷ idle (target ≤ 2) | burst s | CPU busy | load average start → end |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const burst of bursts) {
    rows.push(
      `| ${burst.round} | ${burst.variant} | ${burst.maxInFlight} | ${burst.input} | ${describeAnswers(burst.answers)} | ` +
        `${burst.idleRssMiB.toFixed(0)} MiB | ${burst.peakRssMiB.toFixed(0)} MiB | ${burst.peakOverIdle.toFixed(2)} | ${burst.seconds.toFixed(1)} | ` +
        `${burst.cpuBusyPercent === null ? 'unknown' : `${burst.cpuBusyPercent.toFixed(0)} %`} | ` +
        `${burst.loadAverageStart.map((load) => load.toFixed(2)).join(' ')} → ${burst.loadAverageEnd.map((load) => load.toFixed(2)).join(' ')} |`,
    );
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!existsSync(options.model)) throw new Error(`model ${options.model} is missing (npm run demo:model)`);
  if (!existsSync('/proc/self/status')) throw new Error('this bench reads /proc/<pid>/status: Linux only');
  const loadAtStart = os.loadavg();
  const { metadata } = describeOnnxFile(readFileSync(options.model));
  const generator = demoGeneratorSettings(metadata);
  const size = options.size ?? generator.size ?? 256;
  process.stdout.write(
    `model ${path.relative(PROJECT_ROOT, options.model)} (input ${metadata.inputSize.join('×')}), ${DATASET_IMAGES} generated ${size}² images, ` +
      `${options.requests} concurrent inspect calls per burst\n`,
  );

  const infrastructure = await startInfrastructure();
  const bursts: Burst[] = [];
  try {
    const adminKey = `bench-${randomBytes(24).toString('hex')}`;
    // The data, once: every server of the bench uses the same database and bucket.
    const setup = await startService(infrastructure.info, adminKey, serviceSettingsFromEnvironment());
    let category: Category;
    try {
      category = await prepareCategory(new Client(setup.url, adminKey), 'overload', options.model, {
        size,
        count: DATASET_IMAGES,
        seed: generator.seed ?? 7,
      });
    } finally {
      await setup.stop();
    }
    for (let round = 1; round <= options.rounds; round++) {
      const order: Variant[] = round % 2 === 1 ? ['on', 'off'] : ['off', 'on'];
      for (const variant of order) {
        for (const input of options.inputs) {
          const burst = await runBurst(infrastructure.info, adminKey, category, options, round, variant, input);
          bursts.push(burst);
          process.stdout.write(
            `round ${round}, admission ${variant} (INSPECT_MAX_IN_FLIGHT ${burst.maxInFlight}), ${input}: ` +
              `OK | QUEUE_FULL | other = ${describeAnswers(burst.answers)}; RSS idle ${burst.idleRssMiB.toFixed(0)} MiB, ` +
              `peak ${burst.peakRssMiB.toFixed(0)} MiB (${burst.peakOverIdle.toFixed(2)}×, ${burst.rssSamples} samples); ` +
              `${burst.seconds.toFixed(1)} s, CPU busy ${burst.cpuBusyPercent === null ? 'unknown' : `${burst.cpuBusyPercent.toFixed(0)} %`}\n`,
          );
        }
      }
    }
  } finally {
    await infrastructure.stop();
  }

  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.availableParallelism()} (load average ${loadAtStart
    .map((load) => load.toFixed(2))
    .join(' ')} at the start, ${os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')} at the end), Node ${process.version}${Object.entries(serviceSettingsFromEnvironment())
    .map(([name, value]) => `, ${name}=${value}`)
    .join('')}`;
  process.stdout.write(`\n${machine}\n\n${table(bursts)}\n`);
  const on = bursts.filter((burst) => burst.variant === 'on');
  const off = bursts.filter((burst) => burst.variant === 'off');
  const worst = (list: Burst[]): number => Math.max(...list.map((burst) => burst.peakOverIdle));
  if (on.length > 0 && off.length > 0)
    process.stdout.write(
      `\nworst peak ÷ idle: admission on ${worst(on).toFixed(2)}, off ${worst(off).toFixed(2)}; ` +
        `answers other than OK and QUEUE_FULL with admission on: ${on.reduce(
          (total, burst) =>
            total +
            Object.entries(burst.answers)
              .filter(([code]) => code !== 'OK' && code !== 'QUEUE_FULL')
              .reduce((count, [, value]) => count + value, 0),
          0,
        )}\n`,
    );
  mkdirSync(path.dirname(options.json), { recursive: true });
  writeFileSync(
    options.json,
    `${JSON.stringify({ machine, date: new Date().toISOString(), options: { ...options, json: undefined }, bursts }, null, 2)}\n`,
  );
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), options.json)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
