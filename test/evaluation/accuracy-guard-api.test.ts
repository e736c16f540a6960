// The INT8 accuracy guard over HTTP and graphql-ws (GitHub issue 13 §3), with the server's own
// job workers: a generated category imported, its fp32 model registered, activated and
// evaluated; then INT8 files (metadata `quantization`, built here with the ONNX writer)
// registered: one that measures the same stays VALIDATING while its guard evaluation runs on
// the reference's snapshot, then READY; one whose maps are constant (a real, measured drop) ends
// FAILED with ACCURACY_GUARD; one registered before any fp32 evaluation is READY at once.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import {
  activateModel,
  createClients,
  MODEL_FIELDS,
  registerModel,
  type Clients,
  type ModelVersion,
} from '../inspection/helpers';
import { SubscriptionRecorder } from '../support/graphql-client';
import { attribute, contractMetadata, graph, model, node, pb, tensor, valueInfo } from '../support/onnx-writer';
import { uniqueName } from '../support/resources';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  evaluationModelPath,
  followEvaluation,
  generateCategory,
  importCategory,
  startEvaluation,
  type Evaluation,
} from './helpers';

const TOLERANCE_POINTS = 0.75;
const QUANTIZATION = { quantization: 'int8-qdq-static-per-channel', quantization_calibration_images: '64' };

type ModelEvent = {
  modelVersionChanged: {
    kind: string;
    status: string;
    model: { id: string; status: string; failureCode: string | null };
  };
};

type GuardEvaluation = Pick<Evaluation, 'id' | 'status' | 'auproLimit' | 'model' | 'snapshot'> & {
  accuracyGuardOf: string | null;
  accuracyGuardReference: { id: string } | null;
};

let root: string;
let server: TestServer;
let clients: Clients;
let websocket: Client;
let events: SubscriptionRecorder<ModelEvent>;
let fp32Bytes: Buffer;
let categoryId: string;
let fp32: ModelVersion;
let reference: Evaluation;

/** The fp32 file with `quantization` metadata appended (metadata_props, field 14 of ModelProto): the same graph. */
function withQuantizationMetadata(bytes: Buffer): Buffer {
  return Buffer.concat([
    bytes,
    ...Object.entries(QUANTIZATION).map(([key, value]) => pb.message(14, pb.string(1, key), pb.string(2, value))),
  ]);
}

/** A contract model whose anomaly map is 1 everywhere (|0 · image + 1|): every image and pixel ties. */
function constantMapInt8Model(size: readonly [number, number]): Buffer {
  const [height, width] = size;
  const graphFields = graph({
    name: 'constant-map',
    nodes: [
      node({
        opType: 'Conv',
        inputs: ['image', 'w', 'b'],
        outputs: ['projected'],
        attributes: [attribute.ints('kernel_shape', [1, 1])],
      }),
      node({ opType: 'Abs', inputs: ['projected'], outputs: ['anomaly_map'] }),
      node({
        opType: 'ReduceMax',
        inputs: ['anomaly_map'],
        outputs: ['score'],
        attributes: [attribute.ints('axes', [1, 2, 3]), attribute.int('keepdims', 0)],
      }),
    ],
    inputs: [valueInfo('image', ['N', 3, height, width])],
    outputs: [valueInfo('anomaly_map', ['N', 1, height, width]), valueInfo('score', ['N'])],
    initializers: [tensor('w', [1, 3, 1, 1], [0, 0, 0]), tensor('b', [1], [1])],
  });
  return model(graphFields, { ...contractMetadata(size), ...QUANTIZATION });
}

const GUARD_FIELDS = 'id status auproLimit model { id } snapshot { id } accuracyGuardOf accuracyGuardReference { id }';

async function evaluationsOf(modelId: string): Promise<GuardEvaluation[]> {
  const data = await clients.viewer.data<{ evaluations: { edges: Array<{ node: GuardEvaluation }> } }>(
    `query($modelId: ID) { evaluations(modelId: $modelId, first: 10) { edges { node { ${GUARD_FIELDS} } } } }`,
    { modelId },
  );
  return data.evaluations.edges.map((edge) => edge.node);
}

async function readModel(id: string): Promise<ModelVersion> {
  return (
    await clients.viewer.data<{ model: ModelVersion }>(`query($id: ID!) { model(id: $id) { ${MODEL_FIELDS} } }`, { id })
  ).model;
}

function eventsOf(modelId: string): Array<[string, string]> {
  return events.results
    .map((result) => result.data?.modelVersionChanged)
    .filter((event) => event?.model.id === modelId)
    .map((event) => [event?.kind as string, event?.status as string]);
}

/** Waits for the version's outcome event, then a moment longer: no second outcome may follow. */
async function outcomeEvents(modelId: string): Promise<Array<[string, string]>> {
  const isOutcome = ([kind]: [string, string]): boolean => kind === 'READY' || kind === 'FAILED';
  await events.waitFor(() => eventsOf(modelId).some(isOutcome), 120_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return eventsOf(modelId);
}

beforeAll(async () => {
  root = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('accuracy-guard-'));
  await mkdir(root, { recursive: true });
  fp32Bytes = await readFile(evaluationModelPath());
  const generated = await generateCategory(path.join(root, 'mvtec'), fp32Bytes, {
    testGoodCount: 4,
    testDefectCount: 1,
  });
  server = await startTestServer({
    env: {
      IMPORT_ROOTS: root,
      EVALUATION_BATCH_SIZE: '4',
      MODEL_ACCURACY_TOLERANCE_POINTS: String(TOLERANCE_POINTS),
    },
  });
  clients = await createClients(server);
  categoryId = await importCategory(clients.labeler, 'accuracy guard', generated);

  websocket = clients.viewer.websocket();
  events = new SubscriptionRecorder<ModelEvent>(
    websocket,
    'subscription($id: ID!) { modelVersionChanged(categoryId: $id) { kind status model { id status failureCode } } }',
    { id: categoryId },
  );
  // The subscription is live once events arrive: register garbage until one does.
  for (let attempt = 0; attempt < 20 && events.results.length === 0; attempt += 1) {
    await registerModel(clients.admin, categoryId, 'warm-up garbage', randomBytes(64));
    await events.waitFor((results) => results.length > 0, 500).catch(() => undefined);
  }
  expect(events.results.length).toBeGreaterThan(0);

  fp32 = await registerModel(clients.admin, categoryId, 'fp32', fp32Bytes);
  expect(fp32.status).toBe('READY');
  await activateModel(clients.admin, fp32.id);
});

afterAll(async () => {
  events?.dispose();
  await websocket?.dispose();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

test('an INT8 file in a category without an fp32 evaluation is READY at once, like any contract model, with no guard evaluation', async () => {
  const int8 = await registerModel(clients.admin, categoryId, 'int8 unguarded', withQuantizationMetadata(fp32Bytes));
  expect(int8).toMatchObject({ status: 'READY', failureCode: null, inputWidth: fp32.inputWidth });
  expect(int8.metadata).toContainEqual({ key: 'quantization', value: QUANTIZATION.quantization });
  expect(await evaluationsOf(int8.id)).toEqual([]);
  expect(await outcomeEvents(int8.id)).toEqual([
    ['REGISTERED', 'VALIDATING'],
    ['READY', 'READY'],
  ]);
});

test('the reference: the active fp32 version evaluated to SUCCEEDED', async () => {
  const started = await startEvaluation(clients.labeler, { modelId: fp32.id, categoryId, auproLimit: 0.2 });
  const states = await followEvaluation(clients.viewer, started.id);
  reference = states[states.length - 1] as Evaluation;
  expect(reference.status).toBe('SUCCEEDED');
  // What the failing case below relies on: the fp32 model tells defective pixels from good ones.
  expect(reference.pixelAuroc).toBeGreaterThan(0.6);
});

test('an INT8 file that measures the same: VALIDATING at once, a guard evaluation on the reference snapshot, then READY within the tolerance', async () => {
  const registered = await registerModel(clients.admin, categoryId, 'int8 good', withQuantizationMetadata(fp32Bytes));
  expect(registered).toMatchObject({ status: 'VALIDATING', failureCode: null, failureReason: null, inputWidth: null });

  const [guard, ...others] = await evaluationsOf(registered.id);
  expect(others).toEqual([]);
  expect(guard).toMatchObject({
    model: { id: registered.id },
    snapshot: { id: reference.snapshot?.id },
    auproLimit: 0.2,
    accuracyGuardOf: reference.id,
    accuracyGuardReference: { id: reference.id },
  });
  expect(['QUEUED', 'RUNNING', 'SUCCEEDED']).toContain(guard?.status);

  const states = await followEvaluation(clients.viewer, guard?.id as string);
  const measured = states[states.length - 1] as Evaluation;
  expect(measured.status).toBe('SUCCEEDED');
  for (const metric of ['imageAuroc', 'pixelAuroc', 'aupro'] as const)
    expect(100 * ((reference[metric] as number) - (measured[metric] as number))).toBeLessThanOrEqual(TOLERANCE_POINTS);

  expect(await outcomeEvents(registered.id)).toEqual([
    ['REGISTERED', 'VALIDATING'],
    ['READY', 'READY'],
  ]);
  const ready = await readModel(registered.id);
  expect(ready).toMatchObject({
    status: 'READY',
    failureCode: null,
    failureReason: null,
    inputWidth: fp32.inputWidth,
    inputHeight: fp32.inputHeight,
    mean: fp32.mean,
    std: fp32.std,
    proposedThreshold: fp32.proposedThreshold,
    threshold: fp32.proposedThreshold,
    imageScoreRule: 'max',
  });
  expect(ready.validatedAt).not.toBeNull();
  expect(ready.metadata).toContainEqual({ key: 'quantization', value: QUANTIZATION.quantization });
});

test('an INT8 file whose maps degraded: its guard evaluation measures the drop and the version ends FAILED with ACCURACY_GUARD, the metric and the delta', async () => {
  const registered = await registerModel(clients.admin, categoryId, 'int8 bad', constantMapInt8Model([32, 32]));
  expect(registered.status).toBe('VALIDATING');
  const [guard] = await evaluationsOf(registered.id);
  expect(guard).toMatchObject({ accuracyGuardOf: reference.id, snapshot: { id: reference.snapshot?.id } });

  expect(await outcomeEvents(registered.id)).toEqual([
    ['REGISTERED', 'VALIDATING'],
    ['FAILED', 'FAILED'],
  ]);
  // The evaluation itself succeeded: it measured the file; the version failed on its metrics.
  const states = await followEvaluation(clients.viewer, guard?.id as string);
  const measured = states[states.length - 1] as Evaluation;
  expect(measured).toMatchObject({ status: 'SUCCEEDED', imageAuroc: 0.5, pixelAuroc: 0.5 });

  const failed = await readModel(registered.id);
  expect(failed).toMatchObject({ status: 'FAILED', failureCode: 'ACCURACY_GUARD', isActive: false });
  expect(failed.validatedAt).not.toBeNull();
  // Each metric that dropped by more than the tolerance is named with both values and the drop in points.
  const expected = (['imageAuroc', 'pixelAuroc', 'aupro'] as const).flatMap((metric) => {
    const before = reference[metric] as number;
    const after = measured[metric] as number;
    const drop = 100 * (before - after);
    const label = { imageAuroc: 'image AUROC', pixelAuroc: 'pixel AUROC', aupro: 'AUPRO' }[metric];
    return drop > TOLERANCE_POINTS
      ? [`${label} dropped ${drop.toFixed(2)} points (${before.toFixed(4)} → ${after.toFixed(4)})`]
      : [];
  });
  expect(expected.length).toBeGreaterThan(0);
  expect(failed.failureReason).toBe(
    `${expected.join(', ')} against evaluation ${reference.id} of fp32 v1; tolerance ${TOLERANCE_POINTS} points`,
  );

  // Never served: it cannot be activated.
  expect(
    await clients.admin.errorCode('mutation($id: ID!) { activateModel(id: $id) { id } }', { id: registered.id }),
  ).toBe('MODEL_NOT_READY');
  // What was measured stays viewable: the version keeps its description, so its guard
  // evaluation's heatmaps and overlays are drawn like any evaluation's.
  expect(failed.inputWidth).toBe(32);
  const { evaluation } = await clients.viewer.data<{
    evaluation: { images: { edges: Array<{ node: { heatmapUrl: string; overlayUrl: string } }> } };
  }>('query($id: ID!) { evaluation(id: $id) { images(first: 1) { edges { node { heatmapUrl overlayUrl } } } } }', {
    id: guard?.id,
  });
  const [first] = evaluation.images.edges;
  for (const url of [first?.node.heatmapUrl, first?.node.overlayUrl]) {
    const response = await fetch(url as string);
    expect([response.status, response.headers.get('content-type')]).toEqual([200, 'image/png']);
  }
});
