/**
 * Piscina worker: owns the onnxruntime sessions of this thread (one per loaded model) so
 * that `session.run`, which blocks its thread for the whole inference, never runs on the
 * main thread. Batching, queues and errors live in the engine; this file only opens,
 * runs and releases sessions.
 */
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import Piscina, { move, transferableSymbol, valueSymbol } from 'piscina';
import {
  CONTRACT_ANOMALY_MAP_OUTPUT,
  CONTRACT_INPUT,
  CONTRACT_SCORE_OUTPUT,
  signatureProblems,
  type SessionSignature,
} from './model-signature';
import type {
  Barrier,
  EvictOutcome,
  EvictTask,
  ModelHandle,
  OpenOutcome,
  OpenTask,
  RunOutcome,
  RunTask,
  WorkerRuntimeOptions,
  WorkerTask,
} from './worker-protocol';

const runtime = Piscina.workerData as WorkerRuntimeOptions;

/**
 * Lowers the priority of this thread, before any session exists: onnxruntime's intra-op
 * threads, started by this thread, inherit it. On Linux the nice value belongs to a thread,
 * and setpriority(PRIO_PROCESS, tid) sets that thread's alone; elsewhere it would lower the
 * whole process, so nothing is done there.
 */
function lowerThreadPriority(increment: number): void {
  if (increment === 0 || process.platform !== 'linux') return;
  try {
    const tid = Number(path.basename(readlinkSync('/proc/thread-self')));
    os.setPriority(tid, Math.min(19, os.getPriority(0) + increment));
  } catch (error) {
    // Only scheduling is at stake: inference still runs, at the process's priority.
    process.emitWarning(`could not lower the inference thread's priority: ${(error as Error).message}`);
  }
}

lowerThreadPriority(runtime.threadNice);

const sessionOptions: ort.InferenceSession.SessionOptions = {
  executionProviders: [...runtime.executionProviders],
  intraOpNumThreads: runtime.intraOpThreads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: runtime.graphOptimizationLevel,
  // Several workers (and the event loop) share the cores: idle intra-op threads that spin
  // while waiting for work would take CPU from the others.
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};

const sessions = new Map<string, Promise<ort.InferenceSession>>();

function createSession(model: ModelHandle): Promise<ort.InferenceSession> {
  const source = model.source;
  if (source.kind === 'file') return ort.InferenceSession.create(source.path, sessionOptions);
  // The native binding takes only ArrayBuffer-backed bytes, not a SharedArrayBuffer: copy
  // (onnxruntime keeps its own copy of the weights, so this one is garbage once loaded).
  return ort.InferenceSession.create(new Uint8Array(source.bytes).slice(), sessionOptions);
}

function describeSession(session: ort.InferenceSession): SessionSignature {
  const plain = (values: readonly ort.InferenceSession.ValueMetadata[]): SessionSignature['inputs'] =>
    values.map((value) =>
      value.isTensor
        ? { name: value.name, isTensor: true, type: value.type, shape: [...value.shape] }
        : { name: value.name, isTensor: false },
    );
  return { inputs: plain(session.inputMetadata), outputs: plain(session.outputMetadata) };
}

function outputData(outputs: ort.InferenceSession.ReturnType, name: string, expectedLength: number): Float32Array {
  const tensor = outputs[name];
  if (!(tensor instanceof ort.Tensor) || tensor.type !== 'float32')
    throw new Error(`output "${name}" is not a float32 tensor`);
  const data = tensor.data;
  if (!(data instanceof Float32Array) || data.length !== expectedLength) {
    throw new Error(`output "${name}" has shape [${tensor.dims.join(', ')}], expected ${expectedLength} values`);
  }
  // Transferring needs a buffer of its own: copy if onnxruntime shares or pads it.
  return data.byteOffset === 0 && data.buffer.byteLength === data.byteLength ? data : data.slice();
}

async function runBatch(session: ort.InferenceSession, model: ModelHandle, batch: Float32Array, batchSize: number) {
  const [height, width] = model.inputSize;
  const input = new ort.Tensor('float32', batch, [batchSize, 3, height, width]);
  const started = performance.now();
  const outputs = await session.run({ [CONTRACT_INPUT]: input });
  const runMs = performance.now() - started;
  return {
    anomalyMaps: outputData(outputs, CONTRACT_ANOMALY_MAP_OUTPUT, batchSize * height * width),
    scores: outputData(outputs, CONTRACT_SCORE_OUTPUT, batchSize),
    runMs,
  };
}

/** Blocks this worker until every party has arrived, or until the timeout (then proceeds alone). */
function awaitBarrier(barrier: Barrier): void {
  const counter = new Int32Array(barrier.counter);
  let arrived = Atomics.add(counter, 0, 1) + 1;
  if (arrived >= barrier.parties) {
    Atomics.notify(counter, 0);
    return;
  }
  const deadline = performance.now() + barrier.timeoutMs;
  while (arrived < barrier.parties) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) return;
    Atomics.wait(counter, 0, arrived, remaining);
    arrived = Atomics.load(counter, 0);
  }
}

async function evictExcept(liveModelIds: readonly string[]): Promise<number> {
  const live = new Set(liveModelIds);
  let released = 0;
  for (const [id, pending] of sessions) {
    if (live.has(id)) continue;
    sessions.delete(id);
    released++;
    await pending.then(
      (session) => session.release(),
      () => undefined,
    );
  }
  return released;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function open(task: OpenTask): Promise<OpenOutcome> {
  if (task.barrier) awaitBarrier(task.barrier);
  await evictExcept(task.keep ? [...task.liveModelIds, task.model.id] : task.liveModelIds);
  let pending = task.keep ? sessions.get(task.model.id) : undefined;
  if (pending === undefined) {
    pending = createSession(task.model);
    if (task.keep) sessions.set(task.model.id, pending);
  }
  let session: ort.InferenceSession;
  try {
    session = await pending;
  } catch (error) {
    sessions.delete(task.model.id);
    return { ok: false, stage: 'load', problems: [`onnxruntime cannot load the model: ${message(error)}`] };
  }
  const discard = async (): Promise<void> => {
    if (sessions.get(task.model.id) === pending) sessions.delete(task.model.id);
    await session.release();
  };
  try {
    const signature = describeSession(session);
    const problems = signatureProblems(signature, task.model.inputSize);
    if (problems.length > 0) {
      await discard();
      return { ok: false, stage: 'signature', problems };
    }
    const [height, width] = task.model.inputSize;
    let warmup: Awaited<ReturnType<typeof runBatch>>;
    try {
      warmup = await runBatch(session, task.model, new Float32Array(3 * height * width), 1);
    } catch (error) {
      await discard();
      return { ok: false, stage: 'warmup', problems: [`warm-up inference failed: ${message(error)}`] };
    }
    if (!warmup.anomalyMaps.every(Number.isFinite) || !warmup.scores.every(Number.isFinite)) {
      await discard();
      return {
        ok: false,
        stage: 'warmup',
        problems: ['warm-up inference on a blank image produced non-finite values'],
      };
    }
    if (!task.keep) await session.release();
    return { ok: true, signature, warmupMs: warmup.runMs, threadId };
  } catch (error) {
    await discard();
    throw error;
  }
}

async function run(task: RunTask): Promise<RunOutcome> {
  await evictExcept([...task.liveModelIds, task.model.id]);
  let pending = sessions.get(task.model.id);
  const sessionCreated = pending === undefined;
  if (pending === undefined) {
    // This worker missed the load broadcast (started later, or the barrier timed out).
    pending = createSession(task.model);
    sessions.set(task.model.id, pending);
  }
  let session: ort.InferenceSession;
  try {
    session = await pending;
  } catch (error) {
    sessions.delete(task.model.id);
    throw error;
  }
  const result = await runBatch(session, task.model, task.batch, task.batchSize);
  return { ...result, sessionCreated, threadId };
}

async function evict(task: EvictTask): Promise<EvictOutcome> {
  if (task.barrier) awaitBarrier(task.barrier);
  return { released: await evictExcept(task.liveModelIds), threadId };
}

/** Piscina's entry point: the result of a `run` moves its output buffers instead of copying them. */
export default async function handleTask(task: WorkerTask): Promise<unknown> {
  switch (task.kind) {
    case 'open':
      return open(task);
    case 'evict':
      return evict(task);
    case 'run': {
      const outcome = await run(task);
      return move({
        [transferableSymbol]: [outcome.anomalyMaps.buffer, outcome.scores.buffer],
        [valueSymbol]: outcome,
      });
    }
  }
}
