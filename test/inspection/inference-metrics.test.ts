// Per-model inference figures in /metrics (src/observability/prometheus.ts InspectionMetrics)
// fed by the real engine: batch sizes, latencies, queue lengths and QUEUE_FULL refusals,
// labelled by loaded model keys only, and gone when the model is unloaded.
import { InferenceEngine } from '../../src/inference/engine';
import { InspectionMetrics } from '../../src/observability/prometheus';
import { fixture, outcomeCode, randomTensor, TINY_SIZE } from '../inference/helpers';

const TENSOR = 3 * TINY_SIZE[0] * TINY_SIZE[1];

let engine: InferenceEngine;
let metrics: InspectionMetrics;

beforeEach(() => {
  metrics = new InspectionMetrics({
    queueLengths: () => engine.stats().models.map(({ key, queued }) => ({ modelVersionId: key, queued })),
    loadedModels: () =>
      engine.stats().models.map(({ key, executionProvider }) => ({ modelVersionId: key, executionProvider })),
    imagesInFlight: () => 0,
  });
  engine = new InferenceEngine(
    { workers: 1, intraOpThreads: 1, maxBatchSize: 4, maxQueueLength: 4, maxQueueDelayMs: 0 },
    metrics,
  );
});

afterEach(async () => {
  await engine.close();
});

/** The value of one series in the exposition text (undefined when absent). */
async function sample(series: string): Promise<number | undefined> {
  const line = (await metrics.registry.metrics()).split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('batches, latencies, queue lengths and QUEUE_FULL per loaded model; its series go when it is unloaded', async () => {
  await engine.loadModel('model-a', fixture('tiny.onnx'));
  await engine.loadModel('model-b', fixture('tiny.onnx'));
  // One batch runs at once (one worker): the first request goes alone, 4 wait, the rest are refused.
  const requests = Array.from({ length: 12 }, (_, index) => engine.infer('model-a', randomTensor(TENSOR, index)));
  expect(await sample('inference_queue_length{model_version_id="model-a"}')).toBe(4);
  const outcomes = await Promise.all(requests.map((request) => outcomeCode(request)));
  expect(outcomes.filter((code) => code === 'ok')).toHaveLength(5);
  expect(outcomes.filter((code) => code === 'QUEUE_FULL')).toHaveLength(7);

  const a = '{model_version_id="model-a"}';
  expect(await sample(`inference_queue_full_total${a}`)).toBe(7);
  expect(await sample(`inference_batch_size_count${a}`)).toBe(2);
  expect(await sample(`inference_batch_size_sum${a}`)).toBe(5);
  expect(await sample(`inference_request_duration_seconds_count${a}`)).toBe(5);
  expect(await sample(`inference_queue_length${a}`)).toBe(0);
  expect(await sample('inference_queue_length{model_version_id="model-b"}')).toBe(0);
  expect(await sample('inference_model_loaded{model_version_id="model-a",execution_provider="cpu"}')).toBe(1);

  await engine.unloadModel('model-a');
  const text = await metrics.registry.metrics();
  expect(text).not.toContain('model-a');
  expect(text).toContain('model_version_id="model-b"');
  // Nothing is reported for a key that is not loaded.
  expect(await outcomeCode(engine.infer('model-a', randomTensor(TENSOR, 99)))).toBe('MODEL_NOT_LOADED');
  expect(await metrics.registry.metrics()).not.toContain('model-a');
});
