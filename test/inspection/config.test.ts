import { ConfigError, loadConfig } from '../../src/config/config';

test('model, inspection and inference settings have their documented defaults', () => {
  const config = loadConfig({});
  expect(config.models).toEqual({
    maxBytes: 1024 * 1024 * 1024,
    maxInputSize: 4096,
    warmupTimeoutMs: 60_000,
    seedDemo: undefined,
  });
  expect(config.inspections).toEqual({
    batchMaxImages: 32,
    maxInFlight: 64,
    resize: 'pil-bilinear',
    datasetImageCacheBytes: 64 * 1024 * 1024,
    preprocessWorkers: 1,
  });
  expect(loadConfig({ DATASET_IMAGE_CACHE_MB: '0' }).inspections.datasetImageCacheBytes).toBe(0);
  expect(config.inference).toMatchObject({
    workers: 1,
    intraOpThreads: 0,
    threadNice: 10,
    executionProviders: ['cpu'],
    maxBatchSize: 4,
    maxQueueDelayMs: 2,
    maxQueueLength: 64,
    requestTimeoutMs: 30_000,
  });
});

test('SEED_DEMO, providers and the resize method are parsed; impossible values are refused with their variable', () => {
  expect(loadConfig({ SEED_DEMO: 'false' }).models.seedDemo).toBe(false);
  expect(loadConfig({ SEED_DEMO: 'true' }).models.seedDemo).toBe(true);
  expect(loadConfig({ INFERENCE_EXECUTION_PROVIDERS: 'CUDA, cpu' }).inference.executionProviders).toEqual([
    'cuda',
    'cpu',
  ]);
  expect(loadConfig({ INFERENCE_RESIZE: 'sharp-linear' }).inspections.resize).toBe('sharp-linear');

  let thrown: unknown;
  try {
    loadConfig({ SEED_DEMO: 'maybe', INFERENCE_EXECUTION_PROVIDERS: 'tpu', MODEL_MAX_BYTES: '0' });
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  const problems = (thrown as ConfigError).problems.join('\n');
  for (const variable of ['SEED_DEMO', 'INFERENCE_EXECUTION_PROVIDERS', 'MODEL_MAX_BYTES'])
    expect(problems).toMatch(new RegExp(`^${variable}`, 'm'));
  expect(() => loadConfig({ INFERENCE_MAX_BATCH_SIZE: '16', INFERENCE_MAX_QUEUE_LENGTH: '8' })).toThrow(
    /INFERENCE_MAX_QUEUE_LENGTH: must be at least INFERENCE_MAX_BATCH_SIZE/,
  );
  // An inspectBatch takes a slot per image: one larger than INSPECT_MAX_IN_FLIGHT could never run.
  expect(() => loadConfig({ INSPECT_BATCH_MAX_IMAGES: '32', INSPECT_MAX_IN_FLIGHT: '8' })).toThrow(
    /INSPECT_MAX_IN_FLIGHT: must be at least INSPECT_BATCH_MAX_IMAGES/,
  );
  expect(loadConfig({ INSPECT_BATCH_MAX_IMAGES: '8', INSPECT_MAX_IN_FLIGHT: '8' }).inspections.maxInFlight).toBe(8);
});
