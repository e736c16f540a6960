// The INT8 accuracy guard's states, with the services called directly on a real database and
// bucket and the job workers not started until the last test, so that a guard evaluation stays
// QUEUED for as long as a test needs: what a VALIDATING version refuses, the start-up sweep of
// abandoned validations (which leaves guarded versions alone), and the guard's ends other than
// a comparison: cancelled, and FAILED in the evaluation runner.
import type { EvaluationEntity } from '../../src/db/entities/evaluation.entity';
import type { ModelVersionEntity } from '../../src/db/entities/model-version.entity';
import type { EvaluationMetrics } from '../../src/metrics/evaluation-metrics';
import type { Topics } from '../../src/pubsub/pubsub';
import { generateSamples, readDemoModel } from '../inspection/helpers';
import {
  addImages,
  createCategory,
  createModelServices,
  registerDemoModel,
  type ModelServices,
} from '../support/model-services';
import { pb } from '../support/onnx-writer';

type ModelEvent = Topics['MODEL_VERSION_CHANGED'][0];

let services: ModelServices;
let categoryId: string;
let fp32: ModelVersionEntity;
let reference: EvaluationEntity;
let int8Bytes: Buffer;
let testImageId: string;
const events: ModelEvent[] = [];
let stopEvents: () => Promise<void>;

/** Made-up metrics of the fp32 version's evaluation: the guard's states do not depend on them. */
const REFERENCE_METRICS: EvaluationMetrics = {
  goodImageCount: 2,
  defectiveImageCount: 5,
  imageAuroc: 0.9,
  imageF1Max: 0.8,
  imageF1Threshold: 2,
  pixelAuroc: 0.9,
  aupro: 0.5,
  pixelF1Max: 0.4,
  pixelF1Threshold: 2,
  rocCurve: [],
  proCurve: [],
  perDefect: [],
};

function withQuantizationMetadata(bytes: Buffer): Buffer {
  return Buffer.concat([
    bytes,
    pb.message(14, pb.string(1, 'quantization'), pb.string(2, 'int8-qdq-static-per-channel')),
  ]);
}

async function guardsOf(modelId: string): Promise<EvaluationEntity[]> {
  const page = await services.evaluation.evaluations.list({ modelId }, { first: 10 });
  return page.edges.map((edge) => edge.node);
}

async function registerInt8(name: string): Promise<{ model: ModelVersionEntity; guard: EvaluationEntity }> {
  const model = await services.inspection.models.registerFile({ categoryId, name, bytes: int8Bytes, createdBy: null });
  const guards = await guardsOf(model.id);
  expect(guards).toHaveLength(1);
  return { model, guard: guards[0] as EvaluationEntity };
}

async function expectCode(work: Promise<unknown>, code: string): Promise<void> {
  await expect(work).rejects.toMatchObject({ extensions: { code } });
}

const eventsOf = (modelId: string): Array<[string, string]> =>
  events.filter((event) => event.modelId === modelId).map((event) => [event.kind, event.status]);

async function until(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  services = await createModelServices();
  const iterator = services.pubSub.subscribe('MODEL_VERSION_CHANGED')[Symbol.asyncIterator]();
  const collecting = (async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      events.push(next.value);
    }
  })();
  stopEvents = async () => {
    await iterator.return?.();
    await collecting;
  };
  categoryId = await createCategory(services, 'accuracy-guard');
  const demo = await readDemoModel();
  int8Bytes = withQuantizationMetadata(demo);
  const samples = await generateSamples(demo, { trainCount: 1, testGoodCount: 2, testDefectCount: 1 });
  const images = await addImages(services, categoryId, samples.files);
  testImageId = images.find((image) => image.split === 'TEST')?.id as string;
  fp32 = await registerDemoModel(services, categoryId);

  // The reference: an evaluation of the fp32 version, SUCCEEDED (no worker runs it).
  const snapshot = await services.snapshots.create(categoryId, 'reference', services.principal);
  const started = await services.evaluation.evaluations.start(
    { modelId: fp32.id, categoryId, snapshotId: snapshot.id, auproLimit: 0.25 },
    services.principal,
  );
  expect(await services.db.evaluations.markRunning(started.id)).toBe(true);
  expect(await services.db.evaluations.succeedIfRunning(started.id, REFERENCE_METRICS, 128, 128)).toBe(true);
  reference = await services.db.evaluations.get(started.id);
});

afterAll(async () => {
  await stopEvents?.();
  await services?.close();
});

test('an INT8 version is VALIDATING while its guard evaluation is QUEUED: on the reference snapshot, with its AUPRO limit, marked with it', async () => {
  const { model, guard } = await registerInt8('int8 queued');
  expect(model).toMatchObject({ status: 'VALIDATING', failureCode: null, metadata: null, inputWidth: null });
  expect(guard).toMatchObject({
    status: 'QUEUED',
    modelId: model.id,
    categoryId,
    snapshotId: reference.snapshotId,
    auproLimit: 0.25,
    accuracyGuardOf: reference.id,
    total: reference.total,
  });
  expect(eventsOf(model.id)).toEqual([['REGISTERED', 'VALIDATING']]);
});

test('a VALIDATING version cannot be activated, evaluated or inspected', async () => {
  const { model } = await registerInt8('int8 refusals');
  const { principal } = services;
  await expectCode(services.inspection.models.activate(model.id), 'MODEL_NOT_READY');
  await expectCode(
    services.evaluation.evaluations.start({ modelId: model.id, categoryId }, principal),
    'MODEL_NOT_READY',
  );
  await expectCode(
    services.inspection.inspections.inspect({ modelId: model.id, imageId: testImageId }, principal),
    'MODEL_NOT_READY',
  );
  expect((await services.db.models.get(model.id)).status).toBe('VALIDATING');
});

test('the start-up sweep fails abandoned validations, but not a version whose guard evaluation is QUEUED or RUNNING', async () => {
  const { model: guarded, guard } = await registerInt8('int8 swept');
  // A version left VALIDATING by a process that stopped, with no guard.
  const abandoned = await services.db.models.insertValidating({
    id: '00000000-0000-4000-8000-00000000a5e9',
    categoryId,
    name: 'abandoned',
    version: 1,
    objectKey: 'models/abandoned',
    sha256: '0'.repeat(64),
    byteSize: 1,
    threshold: null,
    snapshotId: null,
    createdBy: null,
  });
  await services.dataSource.query(
    `UPDATE model_version SET created_at = now() - interval '1 hour' WHERE id = ANY($1::uuid[])`,
    [[guarded.id, abandoned.id]],
  );

  const queued = await services.db.models.failValidationsOlderThan(15);
  expect(queued.map((row) => row.id)).toEqual([abandoned.id]);
  expect((await services.db.models.get(abandoned.id)).failureCode).toBe('VALIDATION_INTERRUPTED');

  expect(await services.db.evaluations.markRunning(guard.id)).toBe(true);
  expect(await services.inspection.models.failAbandonedValidations()).toBe(0);
  expect((await services.db.models.get(guarded.id)).status).toBe('VALIDATING');

  // Once its guard evaluation is final (here: set FAILED behind the guard's back), it is swept like any other.
  expect(await services.db.evaluations.failIfRunning(guard.id, 'made up')).toBe(true);
  expect((await services.db.models.failValidationsOlderThan(15)).map((row) => row.id)).toEqual([guarded.id]);
});

test('cancelling the guard evaluation fails its version with ACCURACY_GUARD, announced once', async () => {
  const { model, guard } = await registerInt8('int8 cancelled');
  const cancelled = await services.evaluation.evaluations.cancel(guard.id);
  expect(cancelled.status).toBe('CANCELLED');
  const failed = await services.db.models.get(model.id);
  expect(failed).toMatchObject({ status: 'FAILED', failureCode: 'ACCURACY_GUARD' });
  expect(failed.failureReason).toBe(
    `the accuracy guard's evaluation ${guard.id} was cancelled, so the accuracy against evaluation ${reference.id} was not measured; register the file again`,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(eventsOf(model.id)).toEqual([
    ['REGISTERED', 'VALIDATING'],
    ['FAILED', 'FAILED'],
  ]);
});

test('a guard evaluation that FAILS in the runner (its snapshot deleted) fails its version with ACCURACY_GUARD, announced once', async () => {
  const { model, guard } = await registerInt8('int8 runner failure');
  await services.snapshots.delete(reference.snapshotId as string);
  await services.jobQueue.startWorkers();
  await until(async () => (await services.db.models.get(model.id)).status !== 'VALIDATING');
  expect(await services.db.evaluations.get(guard.id)).toMatchObject({
    status: 'FAILED',
    error: 'its snapshot was deleted',
  });
  const failed = await services.db.models.get(model.id);
  expect(failed).toMatchObject({ status: 'FAILED', failureCode: 'ACCURACY_GUARD' });
  expect(failed.failureReason).toBe(
    `the accuracy guard's evaluation ${guard.id} FAILED (its snapshot was deleted), so the accuracy against evaluation ${reference.id} was not measured; register the file again`,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(eventsOf(model.id)).toEqual([
    ['REGISTERED', 'VALIDATING'],
    ['FAILED', 'FAILED'],
  ]);
});
