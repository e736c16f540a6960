/**
 * Messages between the engine (main thread) and the inference workers. Plain data only:
 * everything crosses a structured clone, so no classes and no errors with extra fields.
 */
import type { SessionSignature } from './model-signature';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'cuda', 'webgpu'];
export const GRAPH_OPTIMIZATION_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

/** Session options every worker applies to every session (the pool's `workerData`). */
export interface WorkerRuntimeOptions {
  readonly intraOpThreads: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
  /** In order of preference; onnxruntime runs nodes a provider lacks on the CPU. */
  readonly executionProviders: readonly ExecutionProvider[];
  /** Added to the process's nice value for the worker thread and the threads it starts (Linux). */
  readonly threadNice: number;
}

/** Where a worker reads the ONNX bytes from; bytes are shared, not copied, between threads. */
export type ModelSource =
  { readonly kind: 'file'; readonly path: string } | { readonly kind: 'bytes'; readonly bytes: SharedArrayBuffer };

export interface ModelHandle {
  /** Unique per load, so a reloaded key never reuses a stale session. */
  readonly id: string;
  readonly source: ModelSource;
  readonly inputSize: readonly [height: number, width: number];
}

/** Makes the tasks of one broadcast land on distinct workers: each waits for all to arrive. */
export interface Barrier {
  /** Int32 arrival counter. */
  readonly counter: SharedArrayBuffer;
  readonly parties: number;
  readonly timeoutMs: number;
}

export interface OpenTask {
  readonly kind: 'open';
  readonly model: ModelHandle;
  /** Keep the session for later `run` tasks (load) or release it after the checks (validation). */
  readonly keep: boolean;
  readonly barrier?: Barrier;
  readonly liveModelIds: readonly string[];
}

export interface RunTask {
  readonly kind: 'run';
  readonly model: ModelHandle;
  /** [batchSize, 3, H, W], transferred. */
  readonly batch: Float32Array;
  readonly batchSize: number;
  readonly liveModelIds: readonly string[];
}

/** Releases every session not in `liveModelIds`. */
export interface EvictTask {
  readonly kind: 'evict';
  readonly barrier?: Barrier;
  readonly liveModelIds: readonly string[];
}

export type WorkerTask = OpenTask | RunTask | EvictTask;

export type OpenOutcome =
  | { readonly ok: true; readonly signature: SessionSignature; readonly warmupMs: number; readonly threadId: number }
  | { readonly ok: false; readonly stage: 'load' | 'signature' | 'warmup'; readonly problems: readonly string[] };

export interface RunOutcome {
  /** [batchSize, H, W], transferred. */
  readonly anomalyMaps: Float32Array;
  readonly scores: Float32Array;
  /** Wall time of `session.run` in the worker. */
  readonly runMs: number;
  /** True when this batch had to create the session first (a worker that missed the load). */
  readonly sessionCreated: boolean;
  readonly threadId: number;
}

export interface EvictOutcome {
  readonly released: number;
  readonly threadId: number;
}
