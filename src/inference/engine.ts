import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EngineClosedError, InferenceFailedError, InvalidModelError, ModelNotLoadedError } from './errors';
import { BatchScheduler, type BatchQueue, type QueueCounters, type QueueEvents } from './micro-batcher';
import { describeOnnxFile, type ModelFileLimits, type ModelMetadata, type SessionSignature } from './model-contract';
import { InferenceWorkerPool, checkExecutionProviders } from './worker-pool';
import {
  EXECUTION_PROVIDERS,
  GRAPH_OPTIMIZATION_LEVELS,
  type EvictOutcome,
  type ExecutionProvider,
  type GraphOptimizationLevel,
  type ModelHandle,
  type ModelSource,
  type OpenOutcome,
  type RunOutcome,
} from './worker-protocol';

export interface EngineOptions {
  /** Worker threads; each holds one onnxruntime session per loaded model. */
  readonly workers: number;
  /** onnxruntime intra-op threads per session; 0: the available cores divided by `workers`. */
  readonly intraOpThreads: number;
  /**
   * Linux: how much lower than the rest of the process the workers and their onnxruntime
   * threads run (nice increment, 0–19), so the event loop still answers at once while
   * inference keeps every core busy. 0 leaves them alone.
   */
  readonly threadNice: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
  readonly executionProviders: readonly ExecutionProvider[];
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  /** Queued (not yet running) requests per model beyond which `infer` fails with QUEUE_FULL. */
  readonly maxQueueLength: number;
  /** Default per-request timeout of `infer`. */
  readonly requestTimeoutMs: number;
  /** How long a model load waits for busy workers to join (then those load on first use). */
  readonly loadBroadcastTimeoutMs: number;
  /** Override of the compiled worker script (tests, bundlers). */
  readonly workerFile?: string;
  /** Largest input height/width a model may declare (checked with the file, before onnxruntime); unset: none. */
  readonly maxInputSize?: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  workers: 1,
  intraOpThreads: 0,
  threadNice: 0,
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
  maxBatchSize: 4,
  maxQueueDelayMs: 5,
  maxQueueLength: 64,
  requestTimeoutMs: 30_000,
  loadBroadcastTimeoutMs: 30_000,
};

/**
 * What the engine reports while it serves, per model key (metrics). Only loaded models are
 * reported: nothing arrives for a key after `modelUnloaded(key)` until it is loaded again.
 * Called synchronously; must not throw.
 */
export interface InferenceObserver {
  /** A batch of `size` requests was sent to a worker. */
  batchSent(modelKey: string, size: number): void;
  /** A request's result arrived `totalMs` after it was submitted (queued and running). */
  requestCompleted(modelKey: string, totalMs: number): void;
  /** A request was refused because the model's queue was full. */
  queueFull(modelKey: string): void;
  modelUnloaded(modelKey: string): void;
}

const NO_OBSERVER: InferenceObserver = {
  batchSent: () => undefined,
  requestCompleted: () => undefined,
  queueFull: () => undefined,
  modelUnloaded: () => undefined,
};

/** A model whose sessions have been created and warmed up on the workers. */
export interface LoadedModel {
  readonly key: string;
  readonly metadata: ModelMetadata;
  /** [height, width] the tensors passed to `infer` must have (3 × H × W values). */
  readonly inputSize: readonly [height: number, width: number];
  readonly signature: SessionSignature;
  /** The provider its sessions were created with first (the others take only what it cannot run). */
  readonly executionProvider: ExecutionProvider;
  readonly warmed: true;
  /** Slowest worker's warm-up inference. */
  readonly warmupMs: number;
  readonly loadedAt: Date;
}

export interface InferenceTimings {
  /** Waiting in the micro-batch queue. */
  readonly queueMs: number;
  /** `session.run` of the whole batch, measured in the worker. */
  readonly inferenceMs: number;
  /** Submission to result, as seen by the caller. */
  readonly totalMs: number;
  readonly batchSize: number;
}

export interface InferenceResult {
  /** H × W values, row-major; may be a view into a buffer shared with its batch. */
  readonly anomalyMap: Float32Array;
  readonly score: number;
  readonly timings: InferenceTimings;
}

export interface InferOptions {
  /** Overrides `requestTimeoutMs`; Infinity disables the timeout. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /**
   * inferBatch only: run the tensors as exactly one batch (at most maxBatchSize of them), with
   * no other request in it, so that the same tensors always give bit-identical outputs (some
   * models' kernels differ at the last bit between batch sizes).
   */
  readonly asOneBatch?: boolean;
}

export interface ModelStats extends Readonly<QueueCounters> {
  readonly key: string;
  readonly executionProvider: ExecutionProvider;
  readonly queued: number;
  readonly runningBatches: number;
  readonly averageBatchSize: number;
}

export interface EngineStats {
  readonly workers: number;
  readonly runningBatches: number;
  /** Batches handed to piscina but waiting for a worker (model loads occupy workers briefly). */
  readonly workerBacklog: number;
  readonly models: readonly ModelStats[];
}

/** An ONNX file: bytes, or a path the workers read (it must stay in place while loaded). */
export type ModelInput = Uint8Array | string;

interface RunValue {
  readonly anomalyMap: Float32Array;
  readonly score: number;
  readonly runMs: number;
}

type OpenSuccess = Extract<OpenOutcome, { ok: true }>;
type OpenFailure = Extract<OpenOutcome, { ok: false }>;

interface ModelRecord {
  readonly loaded: LoadedModel;
  readonly handle: ModelHandle;
  readonly queue: BatchQueue<Float32Array, RunValue>;
}

function checkOptions(options: EngineOptions): void {
  const problems: string[] = [];
  const positiveInt = (name: keyof EngineOptions, value: number): void => {
    if (!Number.isInteger(value) || value < 1) problems.push(`${name} must be a positive integer, got ${value}`);
  };
  positiveInt('workers', options.workers);
  positiveInt('maxBatchSize', options.maxBatchSize);
  positiveInt('maxQueueLength', options.maxQueueLength);
  if (!Number.isInteger(options.intraOpThreads) || options.intraOpThreads < 0)
    problems.push(`intraOpThreads must be an integer >= 0, got ${options.intraOpThreads}`);
  if (!Number.isInteger(options.threadNice) || options.threadNice < 0 || options.threadNice > 19)
    problems.push(`threadNice must be an integer in [0, 19], got ${options.threadNice}`);
  if (!(options.maxQueueDelayMs >= 0)) problems.push(`maxQueueDelayMs must be >= 0, got ${options.maxQueueDelayMs}`);
  if (!(options.requestTimeoutMs > 0)) problems.push(`requestTimeoutMs must be > 0, got ${options.requestTimeoutMs}`);
  if (!(options.loadBroadcastTimeoutMs > 0))
    problems.push(`loadBroadcastTimeoutMs must be > 0, got ${options.loadBroadcastTimeoutMs}`);
  if (options.maxQueueLength < options.maxBatchSize)
    problems.push(`maxQueueLength (${options.maxQueueLength}) must be at least maxBatchSize (${options.maxBatchSize})`);
  if (!GRAPH_OPTIMIZATION_LEVELS.includes(options.graphOptimizationLevel))
    problems.push(`unknown graphOptimizationLevel "${options.graphOptimizationLevel}"`);
  const unknown = options.executionProviders.filter((provider) => !EXECUTION_PROVIDERS.includes(provider));
  if (unknown.length > 0)
    problems.push(`unknown execution providers ${JSON.stringify(unknown)} (known: ${EXECUTION_PROVIDERS.join(', ')})`);
  if (problems.length > 0) throw new RangeError(`Invalid inference engine options: ${problems.join('; ')}`);
}

/**
 * Serves contract models (docs/model-contract.md) from a pool of worker threads with dynamic
 * micro-batching per model. See src/inference/README.md.
 */
export class InferenceEngine {
  readonly options: EngineOptions;
  private readonly pool: InferenceWorkerPool;
  private readonly scheduler: BatchScheduler;
  private readonly models = new Map<string, ModelRecord>();
  /** Every model id some worker may hold a session for and must keep: loading, loaded, draining. */
  private readonly liveIds = new Set<string>();
  private readonly keyLocks = new Map<string, Promise<unknown>>();
  private readonly drains = new Set<Promise<void>>();
  private generation = 0;
  private closed = false;

  constructor(
    options: Partial<EngineOptions> = {},
    private readonly observer: InferenceObserver = NO_OBSERVER,
  ) {
    const merged: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS, ...options };
    checkOptions(merged);
    checkExecutionProviders(merged.executionProviders);
    const intraOpThreads =
      merged.intraOpThreads > 0
        ? merged.intraOpThreads
        : Math.max(1, Math.floor(os.availableParallelism() / merged.workers));
    this.options = { ...merged, intraOpThreads };
    this.scheduler = new BatchScheduler({
      maxBatchSize: this.options.maxBatchSize,
      maxQueueDelayMs: this.options.maxQueueDelayMs,
      maxQueueLength: this.options.maxQueueLength,
      concurrency: this.options.workers,
    });
    this.pool = new InferenceWorkerPool({
      workers: this.options.workers,
      broadcastTimeoutMs: this.options.loadBroadcastTimeoutMs,
      workerFile: this.options.workerFile,
      runtime: {
        intraOpThreads,
        graphOptimizationLevel: this.options.graphOptimizationLevel,
        executionProviders: this.options.executionProviders,
        threadNice: this.options.threadNice,
      },
    });
  }

  /**
   * Checks a model file against the contract (ONNX, opset, metadata, signature) and runs one
   * warm-up inference on a worker, without keeping it. Throws {@link InvalidModelError}.
   */
  async validateModel(model: ModelInput): Promise<ModelMetadata> {
    this.assertOpen();
    const { metadata, source } = await this.readModel(model);
    const handle: ModelHandle = { id: `validation#${++this.generation}`, source, inputSize: metadata.inputSize };
    const outcome = await this.pool.run<OpenOutcome>({
      kind: 'open',
      model: handle,
      keep: false,
      liveModelIds: [...this.liveIds],
    });
    if (!outcome.ok) throw new InvalidModelError(outcome.problems);
    return metadata;
  }

  /**
   * Validates the model, creates its session on every worker and warms each up; then `infer`
   * accepts requests for `key`. Loading a key that is already loaded replaces it: requests
   * already queued finish on the old version, new ones go to the new one.
   */
  loadModel(key: string, model: ModelInput): Promise<LoadedModel> {
    return this.withKeyLock(key, async () => {
      this.assertOpen();
      const { metadata, source } = await this.readModel(model);
      const handle: ModelHandle = { id: `${key}#${++this.generation}`, source, inputSize: metadata.inputSize };
      this.liveIds.add(handle.id);
      let outcomes: OpenOutcome[];
      try {
        outcomes = await this.pool.broadcast<OpenOutcome>((barrier) => ({
          kind: 'open',
          model: handle,
          keep: true,
          barrier,
          liveModelIds: [...this.liveIds],
        }));
      } catch (error) {
        this.forget(handle.id);
        throw error;
      }
      const failure = outcomes.find((outcome): outcome is OpenFailure => !outcome.ok);
      if (failure !== undefined) {
        this.forget(handle.id);
        throw new InvalidModelError(failure.problems);
      }
      if (this.closed) {
        this.forget(handle.id);
        throw new EngineClosedError();
      }
      const opened = outcomes.filter((outcome): outcome is OpenSuccess => outcome.ok);
      const loaded: LoadedModel = {
        key,
        metadata,
        inputSize: metadata.inputSize,
        signature: opened[0].signature,
        executionProvider: this.options.executionProviders[0] ?? 'cpu',
        warmed: true,
        warmupMs: Math.max(...opened.map((outcome) => outcome.warmupMs)),
        loadedAt: new Date(),
      };
      const previous = this.models.get(key);
      this.models.set(key, {
        loaded,
        handle,
        queue: this.scheduler.createQueue(key, (tensors) => this.runBatch(key, handle, tensors), this.queueEvents(key)),
      });
      if (previous) void this.retire(previous, 'drain');
      return loaded;
    });
  }

  /**
   * Stops serving `key`: queued requests fail with MODEL_NOT_LOADED, running batches finish,
   * then the workers release the sessions. Returns false when the key was not loaded.
   */
  unloadModel(key: string): Promise<boolean> {
    return this.withKeyLock(key, async () => {
      const record = this.models.get(key);
      if (record === undefined) return false;
      this.models.delete(key);
      this.observer.modelUnloaded(key);
      await this.retire(record, 'reject');
      return true;
    });
  }

  getModel(key: string): LoadedModel | undefined {
    return this.models.get(key)?.loaded;
  }

  listModels(): LoadedModel[] {
    return [...this.models.values()].map((record) => record.loaded);
  }

  /** True once `key` is loaded and warmed up on the workers (what /readyz waits for). */
  isWarm(key: string): boolean {
    return this.models.has(key);
  }

  /** Throws unless every key is loaded and warmed up; for a readiness check. */
  assertWarm(keys: Iterable<string>): void {
    const cold = [...keys].filter((key) => !this.models.has(key));
    if (cold.length > 0) throw new Error(`models not loaded and warmed up yet: ${cold.join(', ')}`);
  }

  /**
   * One image through the model: `tensor` is the pre-processed float32 CHW [3, H, W] input.
   * Batched with concurrent requests for the same model. Rejects with QUEUE_FULL,
   * INFERENCE_TIMEOUT, INFERENCE_CANCELLED, MODEL_NOT_LOADED, ENGINE_CLOSED or INFERENCE_FAILED.
   */
  async infer(key: string, tensor: Float32Array, options: InferOptions = {}): Promise<InferenceResult> {
    const record = this.recordFor(key, tensor);
    const result = await record.queue.submit(tensor, {
      timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs,
      signal: options.signal,
    });
    return {
      anomalyMap: result.value.anomalyMap,
      score: result.value.score,
      timings: {
        queueMs: result.queueMs,
        inferenceMs: result.value.runMs,
        totalMs: result.totalMs,
        batchSize: result.batchSize,
      },
    };
  }

  /**
   * Many images (batch evaluation): results in input order. At most `maxBatchSize × workers`
   * of them are outstanding at a time; they share the model's queue with interactive requests
   * but are not refused when it is full, and have no timeout unless `options.timeoutMs` is set.
   */
  async inferBatch(
    key: string,
    tensors: readonly Float32Array[],
    options: InferOptions = {},
  ): Promise<InferenceResult[]> {
    for (const tensor of tensors) this.recordFor(key, tensor);
    if (options.asOneBatch && tensors.length > 0) {
      if (tensors.length > this.options.maxBatchSize)
        throw new RangeError(
          `asOneBatch takes at most maxBatchSize (${this.options.maxBatchSize}) tensors, got ${tensors.length}`,
        );
      const submitted = this.recordFor(key, tensors[0]).queue.submitGroup(tensors, {
        timeoutMs: options.timeoutMs ?? Number.POSITIVE_INFINITY,
        signal: options.signal,
        bypassQueueBound: true,
      });
      return (await Promise.all(submitted)).map((result) => ({
        anomalyMap: result.value.anomalyMap,
        score: result.value.score,
        timings: {
          queueMs: result.queueMs,
          inferenceMs: result.value.runMs,
          totalMs: result.totalMs,
          batchSize: result.batchSize,
        },
      }));
    }
    const results = new Array<InferenceResult>(tensors.length);
    const window = this.options.maxBatchSize * this.options.workers;
    let next = 0;
    let failed = false;
    const lane = async (): Promise<void> => {
      while (next < tensors.length && !failed) {
        const index = next++;
        const record = this.recordFor(key, tensors[index]);
        const result = await record.queue.submit(tensors[index], {
          timeoutMs: options.timeoutMs ?? Number.POSITIVE_INFINITY,
          signal: options.signal,
          bypassQueueBound: true,
        });
        results[index] = {
          anomalyMap: result.value.anomalyMap,
          score: result.value.score,
          timings: {
            queueMs: result.queueMs,
            inferenceMs: result.value.runMs,
            totalMs: result.totalMs,
            batchSize: result.batchSize,
          },
        };
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(window, tensors.length) }, () =>
        lane().catch((error: unknown) => {
          failed = true; // the other lanes stop taking new items
          throw error;
        }),
      ),
    );
    return results;
  }

  /** The provider `key`'s sessions run on, or null when it is not loaded. */
  executionProviderOf(key: string): ExecutionProvider | null {
    return this.models.get(key)?.loaded.executionProvider ?? null;
  }

  stats(): EngineStats {
    return {
      workers: this.options.workers,
      runningBatches: this.scheduler.runningBatches,
      workerBacklog: this.pool.backlog,
      models: [...this.models.values()].map(({ loaded, queue }) => ({
        key: loaded.key,
        executionProvider: loaded.executionProvider,
        ...queue.counters,
        queued: queue.queued,
        runningBatches: queue.running,
        averageBatchSize: queue.counters.batches === 0 ? 0 : queue.counters.batchedRequests / queue.counters.batches,
      })),
    };
  }

  /** Fails queued requests with ENGINE_CLOSED, lets running batches finish, stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const record of this.models.values()) record.queue.close(() => new EngineClosedError());
    const idle = [...this.models.values()].map((record) => record.queue.whenIdle());
    this.models.clear();
    // Loads in progress finish (and are then refused), draining versions run their queues out.
    await Promise.all([...idle, ...this.drains, ...this.keyLocks.values()]);
    await this.pool.destroy();
  }

  private assertOpen(): void {
    if (this.closed) throw new EngineClosedError();
  }

  private recordFor(key: string, tensor: Float32Array): ModelRecord {
    this.assertOpen();
    const record = this.models.get(key);
    if (record === undefined) throw new ModelNotLoadedError(key);
    const [height, width] = record.loaded.inputSize;
    if (tensor.length !== 3 * height * width) {
      throw new RangeError(
        `model "${key}" takes 3×${height}×${width} = ${3 * height * width} values, got ${tensor.length}`,
      );
    }
    return record;
  }

  private fileLimits(): ModelFileLimits {
    return this.options.maxInputSize === undefined ? {} : { maxInputSize: this.options.maxInputSize };
  }

  private async readModel(model: ModelInput): Promise<{ metadata: ModelMetadata; source: ModelSource }> {
    if (typeof model === 'string') {
      const file = path.resolve(model);
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        throw new InvalidModelError([`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`]);
      }
      return { metadata: describeOnnxFile(bytes, this.fileLimits()).metadata, source: { kind: 'file', path: file } };
    }
    const { metadata } = describeOnnxFile(model, this.fileLimits());
    // Shared, so every worker reads the same bytes instead of receiving a copy.
    const shared = new SharedArrayBuffer(model.byteLength);
    new Uint8Array(shared).set(model);
    return { metadata, source: { kind: 'bytes', bytes: shared } };
  }

  private async runBatch(key: string, handle: ModelHandle, tensors: readonly Float32Array[]): Promise<RunValue[]> {
    const [height, width] = handle.inputSize;
    const plane = height * width;
    const batch = new Float32Array(tensors.length * 3 * plane);
    tensors.forEach((tensor, i) => batch.set(tensor, i * 3 * plane));
    let outcome: RunOutcome;
    try {
      outcome = await this.pool.run<RunOutcome>(
        { kind: 'run', model: handle, batch, batchSize: tensors.length, liveModelIds: [...this.liveIds] },
        [batch.buffer],
      );
    } catch (error) {
      throw new InferenceFailedError(key, error instanceof Error ? error.message : String(error));
    }
    return tensors.map((_, i) => ({
      anomalyMap: outcome.anomalyMaps.subarray(i * plane, (i + 1) * plane),
      score: outcome.scores[i],
      runMs: outcome.runMs,
    }));
  }

  /**
   * Takes a model version out of service. 'reject': its queued requests fail with
   * MODEL_NOT_LOADED (unload); 'drain': they still run on it (replaced by a newer version,
   * which gets every new request). Once the queue is idle the workers release its sessions;
   * the promise settles then.
   */
  private retire(record: ModelRecord, mode: 'reject' | 'drain'): Promise<void> {
    const key = record.loaded.key;
    if (mode === 'reject') record.queue.close(() => new ModelNotLoadedError(key));
    const drain = record.queue
      .whenIdle()
      .then(() => {
        record.queue.close(() => new ModelNotLoadedError(key));
        this.liveIds.delete(record.handle.id);
        if (this.closed) return;
        return this.pool
          .broadcast<EvictOutcome>((barrier) => ({ kind: 'evict', barrier, liveModelIds: [...this.liveIds] }))
          .then(() => undefined);
      })
      .catch(() => undefined)
      .finally(() => this.drains.delete(drain));
    this.drains.add(drain);
    return drain;
  }

  /** What a model's queue reports reaches the observer while the model is loaded (not after its unload). */
  private queueEvents(key: string): QueueEvents {
    const serving = (): boolean => this.models.has(key);
    return {
      batchSent: (size) => {
        if (serving()) this.observer.batchSent(key, size);
      },
      completed: (totalMs) => {
        if (serving()) this.observer.requestCompleted(key, totalMs);
      },
      refusedQueueFull: () => {
        if (serving()) this.observer.queueFull(key);
      },
    };
  }

  /** Drops a model id that failed to load; workers release its sessions on their next task. */
  private forget(id: string): void {
    this.liveIds.delete(id);
  }

  private withKeyLock<R>(key: string, action: () => Promise<R>): Promise<R> {
    const previous = this.keyLocks.get(key) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(action);
    const settled = result.catch(() => undefined);
    this.keyLocks.set(key, settled);
    void settled.then(() => {
      if (this.keyLocks.get(key) === settled) this.keyLocks.delete(key);
    });
    return result;
  }
}
