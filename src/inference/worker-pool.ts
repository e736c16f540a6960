import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Piscina from 'piscina';
import { compiledWorkerFile } from '../utils/worker-file';
import type { Barrier, ExecutionProvider, WorkerRuntimeOptions, WorkerTask } from './worker-protocol';

/**
 * Fails fast on providers this installation cannot provide. CUDA needs the provider libraries
 * that onnxruntime-node's install script downloads (skipped in this project: see README);
 * WebGPU is bundled, and a missing adapter shows up when the first model loads.
 */
export function checkExecutionProviders(providers: readonly ExecutionProvider[]): void {
  if (providers.length === 0) throw new Error('at least one execution provider is required (e.g. "cpu")');
  if (!providers.includes('cuda')) return;
  const packageDir = path.dirname(path.dirname(require.resolve('onnxruntime-node')));
  const binDir = path.join(packageDir, 'bin');
  const found = existsSync(binDir)
    ? readdirSync(binDir, { recursive: true, encoding: 'utf8' }).some((entry) =>
        path.basename(entry).startsWith('libonnxruntime_providers_cuda'),
      )
    : false;
  if (!found) {
    throw new Error(
      `execution provider "cuda" is not installed: ${binDir} has no libonnxruntime_providers_cuda. ` +
        'Install it with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` (needs internet and CUDA 12), or use "cpu"/"webgpu".',
    );
  }
}

export interface WorkerPoolOptions {
  readonly workers: number;
  readonly runtime: WorkerRuntimeOptions;
  /** How long a broadcast waits for busy workers to join before each proceeds alone. */
  readonly broadcastTimeoutMs: number;
  readonly workerFile?: string;
}

/** A fixed-size piscina pool of inference workers, plus "once on every worker" broadcasts. */
export class InferenceWorkerPool {
  private readonly pool: Piscina<WorkerTask, unknown>;
  private broadcastChain: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: WorkerPoolOptions) {
    this.pool = new Piscina<WorkerTask, unknown>({
      filename: options.workerFile ?? compiledWorkerFile(__dirname, 'inference.worker.js', 'inference worker'),
      minThreads: options.workers,
      maxThreads: options.workers,
      // Workers hold the sessions: never let piscina retire an idle one.
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      workerData: options.runtime,
    });
  }

  get size(): number {
    return this.options.workers;
  }

  /** Piscina's own backlog (tasks waiting for a free worker). */
  get backlog(): number {
    return this.pool.queueSize;
  }

  run<R>(task: WorkerTask, transferList: ArrayBuffer[] = []): Promise<R> {
    return this.pool.run(task, { transferList }) as Promise<R>;
  }

  /**
   * Runs one task per worker. Piscina cannot address a worker, so every task first waits at a
   * shared barrier until all have arrived: a worker holding one cannot take another, hence
   * each lands on a different worker. Broadcasts run one at a time so that two of them never
   * split the workers between them and wait for each other until the timeout.
   */
  broadcast<R>(makeTask: (barrier: Barrier) => WorkerTask): Promise<R[]> {
    const result = this.broadcastChain.then(() => {
      const barrier: Barrier = {
        counter: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT),
        parties: this.options.workers,
        timeoutMs: this.options.broadcastTimeoutMs,
      };
      return Promise.all(Array.from({ length: this.options.workers }, () => this.run<R>(makeTask(barrier))));
    });
    this.broadcastChain = result.catch(() => undefined);
    return result;
  }

  /**
   * Stops the workers at once (their sessions go with them); tasks still running fail. The
   * engine waits for its batches before calling this. (Not piscina's close(): it leaves a
   * 30 s timer behind that keeps the process alive.)
   */
  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}
