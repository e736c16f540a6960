// A one-shot worker thread: computes an evaluation's metrics (seconds of CPU for a large test
// split) off the event loop of the server or worker process that ran the evaluation.
import { parentPort } from 'node:worker_threads';
import {
  computeEvaluationMetrics,
  type EvaluatedImage,
  type EvaluationMetrics,
  type EvaluationMetricsOptions,
} from './evaluation-metrics';

export interface MetricsTask {
  images: EvaluatedImage[];
  width: number;
  height: number;
  options: EvaluationMetricsOptions;
}

export type MetricsOutcome = { ok: true; metrics: EvaluationMetrics } | { ok: false; message: string };

parentPort?.once('message', (task: MetricsTask) => {
  let outcome: MetricsOutcome;
  try {
    outcome = { ok: true, metrics: computeEvaluationMetrics(task.images, task.width, task.height, task.options) };
  } catch (error) {
    outcome = { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  parentPort?.postMessage(outcome);
});
