import { Worker } from 'node:worker_threads';
import { compiledWorkerFile } from '../utils/worker-file';
import type { EvaluatedImage, EvaluationMetrics, EvaluationMetricsOptions } from './evaluation-metrics';
import type { MetricsOutcome, MetricsTask } from './evaluation-metrics.worker';

/**
 * computeEvaluationMetrics in a worker thread, so that seconds of counting and sorting do not
 * stall the process's event loop (HTTP, websockets, other jobs). The maps and masks are
 * transferred, not copied, and are unusable here afterwards.
 */
export async function computeMetricsInWorker(
  images: EvaluatedImage[],
  width: number,
  height: number,
  options: EvaluationMetricsOptions,
): Promise<EvaluationMetrics> {
  const worker = new Worker(compiledWorkerFile(__dirname, 'evaluation-metrics.worker.js', 'metrics worker'));
  try {
    const outcome = new Promise<MetricsOutcome>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the metrics worker exited with code ${code} before answering`)));
    });
    const buffers = new Set<ArrayBuffer>();
    for (const image of images) {
      if (image.map.buffer instanceof ArrayBuffer) buffers.add(image.map.buffer);
      if (image.mask.buffer instanceof ArrayBuffer) buffers.add(image.mask.buffer);
    }
    const task: MetricsTask = { images, width, height, options };
    worker.postMessage(task, [...buffers]);
    const result = await outcome;
    if (!result.ok) throw new Error(`computing the metrics failed: ${result.message}`);
    return result.metrics;
  } finally {
    await worker.terminate();
  }
}
