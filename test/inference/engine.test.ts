import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InferenceEngine, type EngineOptions } from '../../src/inference/engine';
import {
  MODEL_FIXTURES,
  REPOSITORY_ROOT,
  SLOW_SIZE,
  TINY_SIZE,
  fixture,
  maxAbsDiff,
  outcomeCode,
  randomTensor,
  readFloat32,
  readModelFixtureManifest,
  tinyModelReference,
} from './helpers';

const TINY_PLANE = TINY_SIZE[0] * TINY_SIZE[1];
const SLOW_TENSOR = 3 * SLOW_SIZE[0] * SLOW_SIZE[1];

/** Engines are cheap (a worker or two); each test owns one and closes it. */
const engines: InferenceEngine[] = [];
function engine(options: Partial<EngineOptions> = {}): InferenceEngine {
  const created = new InferenceEngine({ workers: 1, intraOpThreads: 1, maxQueueDelayMs: 0, ...options });
  engines.push(created);
  return created;
}
afterEach(async () => {
  await Promise.all(engines.splice(0).map((created) => created.close()));
});

describe('InferenceEngine: outputs', () => {
  it('matches onnxruntime-python on the tiny model, request by request and as a batch', async () => {
    const inputs = readFloat32(fixture('tiny.input.f32'));
    const maps = readFloat32(fixture('tiny.anomaly_map.f32'));
    const scores = readFloat32(fixture('tiny.score.f32'));
    const tiny = engine({ workers: 2 });
    const loaded = await tiny.loadModel('tiny', fixture('tiny.onnx'));
    expect(loaded).toMatchObject({ key: 'tiny', inputSize: [8, 12], warmed: true });
    const tensors = [0, 1, 2].map((i) => inputs.subarray(i * 3 * TINY_PLANE, (i + 1) * 3 * TINY_PLANE));

    const single = await Promise.all(tensors.map((tensor) => tiny.infer('tiny', tensor)));
    const batch = await tiny.inferBatch('tiny', tensors);
    for (const results of [single, batch]) {
      results.forEach((result, i) => {
        expect(maxAbsDiff(result.anomalyMap, maps.subarray(i * TINY_PLANE, (i + 1) * TINY_PLANE))).toBeLessThanOrEqual(
          1e-6,
        );
        expect(Math.abs(result.score - scores[i])).toBeLessThanOrEqual(1e-6);
      });
    }
  });

  const manifest = readModelFixtureManifest();
  const modelFile = manifest && path.resolve(REPOSITORY_ROOT, manifest.model);
  const withFixtures = manifest && modelFile && existsSync(modelFile) ? it : it.skip;
  withFixtures('matches the PyTorch fixture outputs of the demo model to 1e-4 given the fixture tensors', async () => {
    if (!manifest || !modelFile) throw new Error('unreachable: the test is skipped without fixtures');
    const demo = engine({ workers: 2, maxBatchSize: 2 });
    const { inputSize } = await demo.loadModel('demo', modelFile);
    expect(inputSize).toEqual(manifest.input_size);
    const tolerance = Math.min(manifest.parity_tolerance_abs, 1e-4);
    const file = (name: string): Float32Array => readFloat32(path.join(MODEL_FIXTURES, name));
    const plane = inputSize[0] * inputSize[1];

    const cases = manifest.batched ? [...manifest.cases, manifest.batched] : manifest.cases;
    for (const fixtureCase of cases) {
      const inputs = file(fixtureCase.input.file);
      const maps = file(fixtureCase.anomaly_map.file);
      const scores = file(fixtureCase.score.file);
      const count = fixtureCase.input.shape[0];
      const tensors = Array.from({ length: count }, (_, i) => inputs.subarray(i * 3 * plane, (i + 1) * 3 * plane));
      const results = count === 1 ? [await demo.infer('demo', tensors[0])] : await demo.inferBatch('demo', tensors);
      results.forEach((result, i) => {
        expect({
          name: fixtureCase.name,
          i,
          mapWithin: maxAbsDiff(result.anomalyMap, maps.subarray(i * plane, (i + 1) * plane)) <= tolerance,
        }).toEqual({
          name: fixtureCase.name,
          i,
          mapWithin: true,
        });
        expect(Math.abs(result.score - scores[i])).toBeLessThanOrEqual(tolerance);
      });
    }
  });

  const int8File = modelFile && modelFile.replace(/\.onnx$/, '.int8.onnx');
  const withInt8 = manifest && int8File && existsSync(int8File) ? it : it.skip;
  withInt8('serves the demo model’s INT8 twin (QDQ operators) with scores near the fp32 fixtures', async () => {
    if (!manifest || !int8File) throw new Error('unreachable: the test is skipped without the INT8 file');
    const demo = engine({ workers: 1 });
    const loaded = await demo.loadModel('demo-int8', int8File);
    expect(loaded.metadata.props.quantization).toBe('int8-qdq-static-per-channel');
    const file = (name: string): Float32Array => readFloat32(path.join(MODEL_FIXTURES, name));
    for (const fixtureCase of manifest.cases) {
      const result = await demo.infer('demo-int8', file(fixtureCase.input.file));
      // Int8 noise, not float32 noise: the trainer's guard measured at most 0.056 on image scores.
      expect(Math.abs(result.score - (file(fixtureCase.score.file)[0] as number))).toBeLessThan(0.1);
    }
  });
});

describe('InferenceEngine: micro-batching', () => {
  it('runs concurrent requests as batches of at most maxBatchSize, each request getting its own result', async () => {
    const tiny = engine({ maxBatchSize: 4, maxQueueDelayMs: 50 });
    await tiny.loadModel('tiny', fixture('tiny.onnx'));
    const tensors = Array.from({ length: 10 }, (_, i) => randomTensor(3 * TINY_PLANE, 100 + i));

    const results = await Promise.all(tensors.map((tensor) => tiny.infer('tiny', tensor)));

    results.forEach((result, i) => {
      const expected = tinyModelReference(tensors[i], TINY_PLANE);
      expect(maxAbsDiff(result.anomalyMap, expected.map)).toBeLessThanOrEqual(1e-5);
      expect(result.score).toBeCloseTo(expected.score, 5);
    });
    const [stats] = tiny.stats().models;
    // One worker: 4 go at once, the next 4 gather while it runs, the last 2 follow.
    expect(stats).toMatchObject({
      key: 'tiny',
      submitted: 10,
      completed: 10,
      batches: 3,
      batchedRequests: 10,
      largestBatch: 4,
      queued: 0,
    });
    expect(results.map((result) => result.timings.batchSize)).toEqual([4, 4, 4, 4, 4, 4, 4, 4, 2, 2]);
    for (const { timings } of results) {
      expect(timings.queueMs).toBeGreaterThanOrEqual(0);
      expect(timings.inferenceMs).toBeGreaterThan(0);
      expect(timings.totalMs).toBeGreaterThanOrEqual(timings.queueMs);
    }
  });

  it('waits up to maxQueueDelayMs for company, then sends a partial batch', async () => {
    const tiny = engine({ maxBatchSize: 8, maxQueueDelayMs: 20 });
    await tiny.loadModel('tiny', fixture('tiny.onnx'));
    const results = await Promise.all([1, 2, 3].map((seed) => tiny.infer('tiny', randomTensor(3 * TINY_PLANE, seed))));
    expect(results.map((result) => result.timings.batchSize)).toEqual([3, 3, 3]);
    expect(tiny.stats().models[0]).toMatchObject({ batches: 1, largestBatch: 3 });
  });

  it('refuses with QUEUE_FULL beyond maxQueueLength queued requests', async () => {
    const slow = engine({ maxBatchSize: 1, maxQueueLength: 2 });
    await slow.loadModel('slow', fixture('slow.onnx'));
    const running = slow.infer('slow', randomTensor(SLOW_TENSOR, 1)); // sent at once: the worker is free
    const queued = [slow.infer('slow', randomTensor(SLOW_TENSOR, 2)), slow.infer('slow', randomTensor(SLOW_TENSOR, 3))];
    expect(await outcomeCode(slow.infer('slow', randomTensor(SLOW_TENSOR, 4)))).toBe('QUEUE_FULL');
    expect(await Promise.all([running, ...queued].map(outcomeCode))).toEqual(['ok', 'ok', 'ok']);
    expect(slow.stats().models[0]).toMatchObject({ rejectedQueueFull: 1, completed: 3 });
  });

  it('lets inferBatch queue more than maxQueueLength (its own window bounds it)', async () => {
    const tiny = engine({ maxBatchSize: 2, maxQueueLength: 2 });
    await tiny.loadModel('tiny', fixture('tiny.onnx'));
    const tensors = Array.from({ length: 9 }, (_, i) => randomTensor(3 * TINY_PLANE, 200 + i));
    const results = await tiny.inferBatch('tiny', tensors);
    results.forEach((result, i) =>
      expect(result.score).toBeCloseTo(tinyModelReference(tensors[i], TINY_PLANE).score, 5),
    );
  });
});

describe('InferenceEngine: timeouts, cancellation, shutdown', () => {
  it('times out a running request with INFERENCE_TIMEOUT and a queued one is removed from the queue', async () => {
    // The eight requests fill a batch at once; the long delay only keeps the ninth waiting.
    const slow = engine({ maxBatchSize: 8, maxQueueDelayMs: 60_000 });
    await slow.loadModel('slow', fixture('slow.onnx'));
    // Eight images of the slow model keep the only worker busy for many milliseconds.
    const blocking = Array.from({ length: 8 }, (_, i) => slow.infer('slow', randomTensor(SLOW_TENSOR, i)));
    const late = slow.infer('slow', randomTensor(SLOW_TENSOR, 99), { timeoutMs: 1 });
    await expect(late).rejects.toMatchObject({
      code: 'INFERENCE_TIMEOUT',
      extensions: expect.objectContaining({ stage: 'queued' }),
    });
    expect(slow.stats().models[0]).toMatchObject({ queued: 0, timedOut: 1 });
    expect(await Promise.all(blocking.map(outcomeCode))).toEqual(new Array(8).fill('ok'));

    // With seven companions the batch is full, so it is sent at once and times out running.
    const running = slow.infer('slow', randomTensor(SLOW_TENSOR, 5), { timeoutMs: 1 });
    const companions = Array.from({ length: 7 }, (_, i) => slow.infer('slow', randomTensor(SLOW_TENSOR, 10 + i)));
    await expect(running).rejects.toMatchObject({
      code: 'INFERENCE_TIMEOUT',
      extensions: expect.objectContaining({ stage: 'running' }),
    });
    expect(await Promise.all(companions.map(outcomeCode))).toEqual(new Array(7).fill('ok'));
  });

  it('cancels with an AbortSignal', async () => {
    const slow = engine({ maxBatchSize: 1 });
    await slow.loadModel('slow', fixture('slow.onnx'));
    const first = slow.infer('slow', randomTensor(SLOW_TENSOR, 1));
    const controller = new AbortController();
    const second = slow.infer('slow', randomTensor(SLOW_TENSOR, 2), { signal: controller.signal });
    controller.abort();
    expect(await outcomeCode(second)).toBe('INFERENCE_CANCELLED');
    expect(await outcomeCode(first)).toBe('ok');
  });

  it('on close fails queued requests with ENGINE_CLOSED and lets the running batch finish', async () => {
    const slow = engine({ maxBatchSize: 1 });
    await slow.loadModel('slow', fixture('slow.onnx'));
    const running = outcomeCode(slow.infer('slow', randomTensor(SLOW_TENSOR, 1)));
    const queued = outcomeCode(slow.infer('slow', randomTensor(SLOW_TENSOR, 2)));
    await slow.close();
    expect([await running, await queued]).toEqual(['ok', 'ENGINE_CLOSED']);
    expect(await outcomeCode(slow.infer('slow', randomTensor(SLOW_TENSOR, 3)))).toBe('ENGINE_CLOSED');
  });
});

describe('InferenceEngine: the main thread stays free', () => {
  it('keeps the event loop ticking while a slow batch runs in a worker', async () => {
    const slow = engine({ maxBatchSize: 8, maxQueueDelayMs: 60_000 });
    await slow.loadModel('slow', fixture('slow.onnx'));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 2);
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => slow.infer('slow', randomTensor(SLOW_TENSOR, i))),
      );
      expect(results).toHaveLength(8);
    } finally {
      clearInterval(ticker);
    }
    expect(slow.stats().models[0]).toMatchObject({ batches: 1, largestBatch: 8 });
    // A loop blocked by session.run would fire the interval at most once after it returned.
    expect(ticks).toBeGreaterThanOrEqual(3);
  });
});

describe('InferenceEngine: models', () => {
  it('refuses garbage bytes, a truncated file and a file without metadata as INVALID_MODEL', async () => {
    const tiny = engine();
    const truncated = readFileSync(fixture('tiny.onnx')).subarray(0, 300);
    for (const bytes of [
      new TextEncoder().encode('this is not a model'),
      truncated,
      readFileSync(fixture('no-metadata.onnx')),
    ]) {
      await expect(tiny.validateModel(bytes)).rejects.toMatchObject({
        code: 'INVALID_MODEL',
        message: expect.stringMatching(/^Invalid model: /),
      });
    }
    await expect(tiny.validateModel(fixture('does-not-exist.onnx'))).rejects.toMatchObject({
      code: 'INVALID_MODEL',
      message: expect.stringContaining('cannot read'),
    });
  });

  it('refuses a wrong signature and a graph onnxruntime cannot load, naming the problem', async () => {
    const tiny = engine();
    await expect(tiny.validateModel(fixture('wrong-signature.onnx'))).rejects.toMatchObject({
      code: 'INVALID_MODEL',
      message: expect.stringContaining('unexpected inputs ["input"]'),
    });
    await expect(tiny.loadModel('wrong', readFileSync(fixture('wrong-signature.onnx')))).rejects.toMatchObject({
      code: 'INVALID_MODEL',
    });
    await expect(tiny.validateModel(fixture('unknown-op.onnx'))).rejects.toMatchObject({
      code: 'INVALID_MODEL',
      message: expect.stringContaining('onnxruntime cannot load the model'),
    });
    expect(tiny.isWarm('wrong')).toBe(false);
  });

  it('validates a good model without keeping it loaded', async () => {
    const tiny = engine();
    const metadata = await tiny.validateModel(readFileSync(fixture('slow.onnx')));
    expect(metadata).toMatchObject({ inputSize: [64, 64], category: 'slow', proposedThreshold: 1.5 });
    expect(tiny.listModels()).toEqual([]);
  });

  it('is warm only after loading; unloading fails queued requests and later ones with MODEL_NOT_LOADED', async () => {
    const slow = engine({ workers: 2, maxBatchSize: 1 });
    expect(slow.isWarm('slow')).toBe(false);
    expect(() => slow.assertWarm(['slow'])).toThrow('slow');
    const loading = slow.loadModel('slow', readFileSync(fixture('slow.onnx')));
    expect(slow.isWarm('slow')).toBe(false);
    await loading;
    expect(slow.isWarm('slow')).toBe(true);
    expect(() => slow.assertWarm(['slow'])).not.toThrow();

    const running = [1, 2].map((seed) => outcomeCode(slow.infer('slow', randomTensor(SLOW_TENSOR, seed)))); // one per worker
    const queued = outcomeCode(slow.infer('slow', randomTensor(SLOW_TENSOR, 3)));
    expect(await slow.unloadModel('slow')).toBe(true);
    expect(await Promise.all([...running, queued])).toEqual(['ok', 'ok', 'MODEL_NOT_LOADED']);
    expect(await slow.unloadModel('slow')).toBe(false);
    expect(slow.isWarm('slow')).toBe(false);
    expect(await outcomeCode(slow.infer('slow', randomTensor(SLOW_TENSOR, 4)))).toBe('MODEL_NOT_LOADED');
  });

  it('replaces a model loaded again under the same key: queued requests finish on the old version, new ones use the new', async () => {
    const replacing = engine({ maxBatchSize: 1 });
    await replacing.loadModel('model', fixture('slow.onnx'));
    const running = replacing.infer('model', randomTensor(SLOW_TENSOR, 1));
    const queued = replacing.infer('model', randomTensor(SLOW_TENSOR, 2));
    await replacing.loadModel('model', fixture('tiny.onnx'));
    expect(replacing.getModel('model')?.inputSize).toEqual([8, 12]);
    expect((await running).anomalyMap).toHaveLength(SLOW_SIZE[0] * SLOW_SIZE[1]);
    expect((await queued).anomalyMap).toHaveLength(SLOW_SIZE[0] * SLOW_SIZE[1]);
    await expect(replacing.infer('model', randomTensor(SLOW_TENSOR, 3))).rejects.toThrow(RangeError);
    expect((await replacing.infer('model', randomTensor(3 * TINY_PLANE, 1))).anomalyMap).toHaveLength(TINY_PLANE);
  });

  it('serves several models side by side', async () => {
    const both = engine({ workers: 2, maxBatchSize: 2 });
    await Promise.all([both.loadModel('tiny', fixture('tiny.onnx')), both.loadModel('slow', fixture('slow.onnx'))]);
    const [tinyResult, slowResult] = await Promise.all([
      both.infer('tiny', randomTensor(3 * TINY_PLANE, 1)),
      both.infer('slow', randomTensor(SLOW_TENSOR, 1)),
    ]);
    expect(tinyResult.anomalyMap).toHaveLength(TINY_PLANE);
    expect(slowResult.anomalyMap).toHaveLength(SLOW_SIZE[0] * SLOW_SIZE[1]);
    expect(
      both
        .stats()
        .models.map((model) => model.key)
        .sort(),
    ).toEqual(['slow', 'tiny']);
  });
});

describe('InferenceEngine: options', () => {
  it('refuses inconsistent options and a CUDA provider that is not installed', () => {
    expect(() => new InferenceEngine({ maxBatchSize: 8, maxQueueLength: 4 })).toThrow(
      /maxQueueLength \(4\) must be at least maxBatchSize \(8\)/,
    );
    expect(() => new InferenceEngine({ workers: 0 })).toThrow(/workers must be a positive integer/);
    expect(() => new InferenceEngine({ executionProviders: ['cuda'] })).toThrow(/"cuda" is not installed/);
  });
});

/** Nice value of every thread of this process (Linux /proc), by thread id. */
function threadNiceValues(): Map<number, number> {
  const values = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the parenthesised command name; nice is field 19 of stat(5), the 17th here.
    values.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return values;
}

const onLinux = process.platform === 'linux' ? describe : describe.skip;
onLinux('InferenceEngine: thread priority', () => {
  it('runs the worker and its onnxruntime threads at the process nice value + threadNice, the rest untouched', async () => {
    const base = os.getPriority(0);
    const before = threadNiceValues();
    const lowered = engine({ threadNice: 7, intraOpThreads: 2 });
    await lowered.loadModel('tiny', fixture('tiny.onnx'));
    await lowered.infer('tiny', randomTensor(3 * TINY_PLANE, 5));
    const started = [...threadNiceValues()].filter(([tid]) => !before.has(tid));
    // The worker thread and onnxruntime's second intra-op thread (the worker is the first).
    expect(started.filter(([, nice]) => nice === Math.min(19, base + 7)).length).toBeGreaterThanOrEqual(2);
    expect([...before.keys()].map((tid) => threadNiceValues().get(tid) ?? base)).toEqual([...before.values()]);
  });
});
