// inferBatch({ asOneBatch }): what evaluations rely on for bit-identical maps whatever the
// other traffic: the tensors run as exactly one batch of their own.
import { InferenceEngine } from '../../src/inference/engine';
import { fixture, randomTensor, TINY_SIZE } from '../inference/helpers';

const TENSOR = 3 * TINY_SIZE[0] * TINY_SIZE[1];

let engine: InferenceEngine;

beforeAll(async () => {
  engine = new InferenceEngine({ workers: 1, intraOpThreads: 1, maxBatchSize: 4, maxQueueDelayMs: 50 });
  await engine.loadModel('tiny', fixture('tiny.onnx'));
});

afterAll(async () => {
  await engine.close();
});

test('a group runs alone and whole, even with requests queued before and after it', async () => {
  // With a 50 ms gathering delay, ungrouped requests would all join one batch.
  const before = engine.infer('tiny', randomTensor(TENSOR, 1));
  const group = engine.inferBatch(
    'tiny',
    [2, 3, 4].map((seed) => randomTensor(TENSOR, seed)),
    { asOneBatch: true },
  );
  const after = engine.infer('tiny', randomTensor(TENSOR, 5));
  const [first, grouped, last] = await Promise.all([before, group, after]);
  expect(grouped.map((result) => result.timings.batchSize)).toEqual([3, 3, 3]);
  expect(first.timings.batchSize).toBe(1);
  expect(last.timings.batchSize).toBe(1);
  const alone = await engine.inferBatch('tiny', [randomTensor(TENSOR, 3)]);
  expect(Array.from(grouped[1]?.anomalyMap ?? [])).toEqual(Array.from(alone[0]?.anomalyMap ?? []));
});

test('more tensors than maxBatchSize are refused', async () => {
  await expect(
    engine.inferBatch(
      'tiny',
      [1, 2, 3, 4, 5].map((seed) => randomTensor(TENSOR, seed)),
      { asOneBatch: true },
    ),
  ).rejects.toThrow(RangeError);
});
