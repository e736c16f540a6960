// The model registry and inspections over HTTP and graphql-ws, as a frontend uses them, with the
// bundled demo model and generated images in its style.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeMapObject } from '../../src/formats/anomaly-map-object';
import { decodeNpyFloat32 } from '../../src/formats/npy';
import { loadWithNumpy } from '../support/numpy';
import { SubscriptionRecorder, type GraphQLTestClient } from '../support/graphql-client';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  activateModel,
  createCategory,
  createClients,
  eventually,
  fetchImage,
  generateSamples,
  inspect,
  INSPECT,
  INSPECTION_FIELDS,
  MODEL_FIELDS,
  put,
  readDemoModel,
  REGISTER_MODEL,
  REPOSITORY_ROOT,
  registerModel,
  requestModelUpload,
  sha256,
  StorageProbe,
  uploadImages,
  WRONG_SIGNATURE_MODEL_PATH,
  type Clients,
  type Inspection,
  type ModelVersion,
  type SampleFile,
} from './helpers';

const FIXTURES = path.join(REPOSITORY_ROOT, 'test', 'fixtures', 'model');
const BATCH_MAX = 4;
const MODEL_MAX_BYTES = 256 * 1024 * 1024;

let server: TestServer;
let clients: Clients;
let probe: StorageProbe;
let modelBytes: Buffer;
let categoryId: string;
let categoryName: string;
let imageSize: number;
let goodImageIds: string[];
let defectiveImageIds: string[];
/** A fold defect: the demo model is weak (image AUROC 0.73 over all defects) but finds folds (0.87). */
let foldImageId: string;
let foldBytes: Buffer;
let demoModel: ModelVersion;

beforeAll(async () => {
  // The default resize is the trainer's own (Pillow BILINEAR): the service's tensors equal the fixtures'.
  server = await startTestServer({
    env: {
      INSPECT_BATCH_MAX_IMAGES: String(BATCH_MAX),
      MODEL_MAX_BYTES: String(MODEL_MAX_BYTES),
    },
  });
  clients = await createClients(server);
  probe = new StorageProbe(server);
  modelBytes = await readDemoModel();
  // The generator settings the model was trained with; TEST images, which training never saw.
  const samples = await generateSamples(modelBytes, { trainCount: 0, testGoodCount: 3, testDefectCount: 1 });
  categoryName = samples.category;
  imageSize = samples.size;
  ({ categoryId } = await createCategory(clients.labeler, 'inspection api', categoryName));
  const good = samples.files.filter((file) => file.defectType === null);
  const defective = samples.files.filter((file) => file.defectType !== null);
  goodImageIds = await uploadImages(clients.labeler, categoryId, good);
  defectiveImageIds = await uploadImages(clients.labeler, categoryId, defective);
  const fold = defective.findIndex((file) => file.defectType === 'fold');
  foldImageId = defectiveImageIds[fold] as string;
  foldBytes = (defective[fold] as SampleFile).bytes;
});

afterAll(async () => {
  await probe?.close();
  await server?.stop();
});

/** Waits until every inspection's anomaly map (written after the inspection was answered) is in S3 and linked from its row. */
/** Every answered inspection's map is stored before its answer (in its row), and moves to S3 soon after. */
async function anomalyMapsStored(): Promise<void> {
  expect(
    await probe.count(
      'SELECT count(*) FROM inspection WHERE map_object_key IS NULL AND anomaly_map IS NULL AND pending_map IS NULL',
    ),
  ).toBe(0);
  await eventually(async () => {
    const waiting = await probe.count('SELECT count(*) FROM inspection WHERE pending_map IS NOT NULL');
    if (waiting > 0) throw new Error(`${waiting} maps not moved to S3 yet`);
  }, 20_000);
}

type ModelEvent = { modelVersionChanged: { kind: string; status: string; model: { id: string; status: string } } };

describe('model registry', () => {
  test('registerModel stores the file and validates it: a subscriber sees VALIDATING, then READY; the metadata comes from the file', async () => {
    const client = clients.viewer.websocket();
    const events = new SubscriptionRecorder<ModelEvent>(
      client,
      'subscription($id: ID!) { modelVersionChanged(categoryId: $id) { kind status model { id status } } }',
      { id: categoryId },
    );
    try {
      // The subscription is live once events arrive: register garbage until one does, so the
      // test does not depend on how long the websocket takes to subscribe.
      for (let attempt = 0; attempt < 20 && events.results.length === 0; attempt += 1) {
        await registerModel(clients.admin, categoryId, 'warm-up garbage', randomBytes(64));
        await events.waitFor((results) => results.length > 0, 500).catch(() => undefined);
      }
      expect(events.results.length).toBeGreaterThan(0);

      demoModel = await registerModel(clients.admin, categoryId, 'demo', modelBytes);
      expect(demoModel).toMatchObject({
        categoryId,
        name: 'demo',
        version: 1,
        status: 'READY',
        failureCode: null,
        failureReason: null,
        isActive: false,
      });
      expect(demoModel.sha256).toBe(sha256(modelBytes));
      expect(demoModel.byteSize).toBe(modelBytes.length);
      expect(demoModel.validatedAt).not.toBeNull();
      const metadata = Object.fromEntries(demoModel.metadata.map((entry) => [entry.key, entry.value]));
      expect(metadata.format_version).toBe('1');
      expect(JSON.parse(metadata.input_size as string)).toEqual([demoModel.inputHeight, demoModel.inputWidth]);
      expect(demoModel.mean).toEqual(JSON.parse(metadata.mean as string));
      expect(demoModel.std).toEqual(JSON.parse(metadata.std as string));
      expect(demoModel.scoreStats?.count).toBe(JSON.parse(metadata.score_stats as string).count);
      expect(demoModel.proposedThreshold).toBe(Number(metadata.proposed_threshold));
      expect(demoModel.threshold).toBe(demoModel.proposedThreshold);
      expect(demoModel.imageScoreRule).toBe('max');

      const seen = await events.waitFor(
        (results) => results.filter((result) => result.data?.modelVersionChanged.model.id === demoModel.id).length >= 2,
      );
      const transitions = seen
        .filter((result) => result.data?.modelVersionChanged.model.id === demoModel.id)
        .map((result) => [result.data?.modelVersionChanged.kind, result.data?.modelVersionChanged.status]);
      expect(transitions).toEqual([
        ['REGISTERED', 'VALIDATING'],
        ['READY', 'READY'],
      ]);
    } finally {
      events.dispose();
      await client.dispose();
    }

    const fetched = await clients.viewer.data<{ model: ModelVersion }>(
      `query($id: ID!) { model(id: $id) { ${MODEL_FIELDS} } }`,
      { id: demoModel.id },
    );
    expect(fetched.model).toEqual(demoModel);
    expect(await probe.keys(`models/${demoModel.id}/`)).toEqual([`models/${demoModel.id}/model.onnx`]);
    expect(await probe.keys('model-uploads/')).toEqual([]);
  });

  test('versions count per category and name; a threshold given at registration is kept', async () => {
    const second = await registerModel(clients.admin, categoryId, 'demo', modelBytes, 0.25);
    expect(second).toMatchObject({ name: 'demo', version: 2, status: 'READY', threshold: 0.25 });
    const other = await registerModel(clients.admin, categoryId, 'other name', modelBytes);
    expect(other.version).toBe(1);
    const page = await clients.viewer.data<{
      models: { totalCount: number; edges: Array<{ node: { id: string; name: string; version: number } }> };
    }>('query($id: ID!) { models(categoryId: $id, first: 2) { totalCount edges { node { id name version } } } }', {
      id: categoryId,
    });
    expect(page.models.edges.map((edge) => edge.node.id)).toEqual([other.id, second.id]);
    expect(page.models.totalCount).toBeGreaterThanOrEqual(4);
  });

  test('a garbage file and an ONNX file with the wrong signature end FAILED with INVALID_MODEL and are never served', async () => {
    const garbage = await registerModel(clients.admin, categoryId, 'garbage', randomBytes(4096));
    expect(garbage).toMatchObject({
      status: 'FAILED',
      failureCode: 'INVALID_MODEL',
      isActive: false,
      inputWidth: null,
      threshold: null,
    });
    expect(garbage.failureReason).toMatch(/not an ONNX model/);

    const wrong = await registerModel(
      clients.admin,
      categoryId,
      'wrong signature',
      await readFile(WRONG_SIGNATURE_MODEL_PATH),
    );
    expect(wrong).toMatchObject({ status: 'FAILED', failureCode: 'INVALID_MODEL' });
    expect(wrong.failureReason).toMatch(/input/);

    for (const failed of [garbage, wrong]) {
      expect(
        await clients.admin.errorCode('mutation($id: ID!) { activateModel(id: $id) { id } }', { id: failed.id }),
      ).toBe('MODEL_NOT_READY');
      expect(
        await clients.admin.errorCode('mutation($id: ID!) { setModelThreshold(id: $id, threshold: 1) { id } }', {
          id: failed.id,
        }),
      ).toBe('MODEL_NOT_READY');
      expect(
        await clients.labeler.errorCode(INSPECT, { input: { modelId: failed.id, imageId: goodImageIds[0] } }),
      ).toBe('MODEL_NOT_READY');
    }
  });

  test('problems with the upload are errors that store nothing', async () => {
    const versionsBefore = await probe.count('SELECT count(*) FROM model_version');
    const register = (uploadId: string, category = categoryId): Promise<string | undefined> =>
      clients.admin.errorCode(REGISTER_MODEL, { input: { categoryId: category, name: 'refused', uploadId } });

    expect(await register('3f1c1f5e-0000-4000-8000-000000000000')).toBe('NOT_FOUND');
    const early = await requestModelUpload(clients.admin, modelBytes);
    expect(await register(early.uploadId)).toBe('UPLOAD_INCOMPLETE');
    expect(await register(early.uploadId, '3f1c1f5e-0000-4000-8000-000000000000')).toBe('NOT_FOUND');

    const mismatched = await requestModelUpload(clients.admin, modelBytes, sha256(Buffer.from('something else')));
    await put(mismatched.url, mismatched.headers, modelBytes);
    expect(await register(mismatched.uploadId)).toBe('CHECKSUM_MISMATCH');
    expect(await register(mismatched.uploadId)).toBe('NOT_FOUND');

    expect(
      await clients.admin.errorCode('mutation { requestModelUpload(input: { byteSize: 268435457 }) { uploadId } }'),
    ).toBe('BAD_USER_INPUT');
    expect(
      await clients.admin.errorCode(REGISTER_MODEL, { input: { categoryId, name: ' ', uploadId: early.uploadId } }),
    ).toBe('BAD_USER_INPUT');

    expect(await probe.count('SELECT count(*) FROM model_version')).toBe(versionsBefore);
    expect(await probe.keys(`model-uploads/${mismatched.uploadId}`)).toEqual([]);
  });

  test('roles: VIEWER reads, LABELER inspects, ADMIN registers, activates and sets thresholds', async () => {
    expect(
      await clients.viewer.errorCode('mutation { requestModelUpload(input: { byteSize: 10 }) { uploadId } }'),
    ).toBe('FORBIDDEN');
    expect(
      await clients.labeler.errorCode('mutation { requestModelUpload(input: { byteSize: 10 }) { uploadId } }'),
    ).toBe('FORBIDDEN');
    expect(
      await clients.labeler.errorCode('mutation($id: ID!) { activateModel(id: $id) { id } }', { id: demoModel.id }),
    ).toBe('FORBIDDEN');
    expect(
      await clients.labeler.errorCode('mutation($id: ID!) { setModelThreshold(id: $id, threshold: 1) { id } }', {
        id: demoModel.id,
      }),
    ).toBe('FORBIDDEN');
    expect(
      await clients.viewer.errorCode(INSPECT, { input: { modelId: demoModel.id, imageId: goodImageIds[0] } }),
    ).toBe('FORBIDDEN');
    expect(
      await clients.viewer.errorCode(
        'mutation { requestInspectionUpload(input: { contentType: "image/png", byteSize: 10 }) { uploadId } }',
      ),
    ).toBe('FORBIDDEN');
    expect(
      (
        await clients.viewer.data<{ model: { id: string } }>('query($id: ID!) { model(id: $id) { id } }', {
          id: demoModel.id,
        })
      ).model.id,
    ).toBe(demoModel.id);
    expect(
      (await clients.viewer.data<{ model: null }>('query { model(id: "3f1c1f5e-0000-4000-8000-000000000000") { id } }'))
        .model,
    ).toBeNull();
  });
});

describe('inspect', () => {
  test('without an active model inspect(categoryId) is NO_ACTIVE_MODEL; activateModel makes one active per category', async () => {
    expect(await clients.labeler.errorCode(INSPECT, { input: { categoryId, imageId: goodImageIds[0] } })).toBe(
      'NO_ACTIVE_MODEL',
    );
    const versions = await clients.viewer.data<{ models: { edges: Array<{ node: { id: string; status: string } }> } }>(
      'query($id: ID!) { models(categoryId: $id, first: 50) { edges { node { id status } } } }',
      { id: categoryId },
    );
    const other = versions.models.edges.find((edge) => edge.node.status === 'READY' && edge.node.id !== demoModel.id)
      ?.node.id as string;
    expect((await activateModel(clients.admin, other)).isActive).toBe(true);
    const active = await activateModel(clients.admin, demoModel.id);
    expect(active.isActive).toBe(true);
    expect(active.activatedAt).not.toBeNull();
    const category = await clients.viewer.data<{ category: { activeModel: { id: string } | null } }>(
      'query($id: ID!) { category(id: $id) { activeModel { id } } }',
      { id: categoryId },
    );
    expect(category.category.activeModel?.id).toBe(demoModel.id);
    expect(
      await probe.count('SELECT count(*) FROM model_version WHERE category_id = $1 AND is_active', [categoryId]),
    ).toBe(1);
  });

  test('a defective image scores higher than a good one; the result PNGs have the image size; a subscriber receives both', async () => {
    const client = clients.viewer.websocket();
    type Created = { inspectionCreated: { id: string; score: number; isAnomalous: boolean; model: { id: string } } };
    const all = new SubscriptionRecorder<Created>(
      client,
      'subscription($id: ID) { inspectionCreated(categoryId: $id) { id score isAnomalous model { id } } }',
      { id: categoryId },
    );
    const anomalousOnly = new SubscriptionRecorder<Created>(
      client,
      'subscription($id: ID) { inspectionCreated(categoryId: $id, onlyAnomalous: true) { id isAnomalous } }',
      { id: categoryId },
    );
    try {
      for (let attempt = 0; attempt < 20 && all.results.length === 0; attempt += 1) {
        await inspect(clients.labeler, { categoryId, imageId: goodImageIds[1] });
        await all.waitFor((results) => results.length > 0, 500).catch(() => undefined);
      }
      expect(all.results.length).toBeGreaterThan(0);

      const good = await inspect(clients.labeler, { categoryId, imageId: goodImageIds[0] });
      const defective = await inspect(clients.labeler, { categoryId, imageId: foldImageId });
      expect(defective.score).toBeGreaterThan(good.score);
      expect(defective.normalizedScore).toBeGreaterThanOrEqual(good.normalizedScore);
      for (const inspection of [good, defective]) {
        expect(inspection.model.id).toBe(demoModel.id);
        expect(inspection.categoryId).toBe(categoryId);
        expect(inspection.threshold).toBe(demoModel.threshold);
        expect(inspection.isAnomalous).toBe(inspection.score >= inspection.threshold);
        expect(inspection.normalizedScore).toBeGreaterThanOrEqual(0);
        expect(inspection.normalizedScore).toBeLessThanOrEqual(1);
        expect(inspection.latencyMs).toBeGreaterThan(0);
        expect([inspection.width, inspection.height]).toEqual([imageSize, imageSize]);
        expect(inspection.inputUrl).toBeNull();
        const [heatmap, overlay, mask] = await Promise.all([
          fetchImage(inspection.anomalyMapUrl),
          fetchImage(inspection.overlayUrl),
          fetchImage(inspection.maskUrl),
        ]);
        for (const png of [heatmap, overlay, mask]) {
          expect(png.format).toBe('png');
          expect(png.contentType).toBe('image/png');
          expect([png.width, png.height]).toEqual([imageSize, imageSize]);
        }
        expect(heatmap.channels).toBe(3);
        expect(overlay.channels).toBe(3);
        expect(mask.channels).toBe(1);
        expect(inspection.regions.length > 0).toBe(inspection.isAnomalous);
        for (const region of inspection.regions) {
          expect(region.x + region.width).toBeLessThanOrEqual(imageSize);
          expect(region.maxScore).toBeGreaterThanOrEqual(inspection.threshold);
        }
      }
      expect(defective.image?.id).toBe(foldImageId);

      const received = await all.waitFor((results) =>
        [good.id, defective.id].every((id) => results.some((result) => result.data?.inspectionCreated.id === id)),
      );
      const byId = new Map(
        received.map((result) => [result.data?.inspectionCreated.id, result.data?.inspectionCreated]),
      );
      expect(byId.get(defective.id)?.score).toBe(defective.score);
      expect(byId.get(good.id)?.model.id).toBe(demoModel.id);
      expect(received.every((result) => !result.errors)).toBe(true);

      // A verdict of each kind, to see that onlyAnomalous filters.
      const low = await inspect(clients.labeler, { categoryId, imageId: goodImageIds[2], threshold: Number.MAX_VALUE });
      const high = await inspect(clients.labeler, { categoryId, imageId: goodImageIds[2], threshold: -1 });
      expect([low.isAnomalous, high.isAnomalous]).toEqual([false, true]);
      await all.waitFor((results) => results.some((result) => result.data?.inspectionCreated.id === high.id));
      const anomalous = await anomalousOnly.waitFor((results) =>
        results.some((result) => result.data?.inspectionCreated.id === high.id),
      );
      expect(anomalous.every((result) => result.data?.inspectionCreated.isAnomalous === true)).toBe(true);
      expect(anomalous.some((result) => result.data?.inspectionCreated.id === low.id)).toBe(false);
    } finally {
      all.dispose();
      anomalousOnly.dispose();
      await client.dispose();
    }
  });

  test('an inspection upload: request, PUT, inspect; the bytes inspected are kept and the upload is consumed', async () => {
    type Target = {
      requestInspectionUpload: { uploadId: string; url: string; headers: Array<{ name: string; value: string }> };
    };
    const request =
      'mutation($input: RequestInspectionUploadInput!) { requestInspectionUpload(input: $input) { uploadId url headers { name value } expiresAt } }';
    const target = (
      await clients.labeler.data<Target>(request, {
        input: { contentType: 'image/png', byteSize: foldBytes.length, sha256: sha256(foldBytes) },
      })
    ).requestInspectionUpload;
    expect(await clients.labeler.errorCode(INSPECT, { input: { categoryId, uploadId: target.uploadId } })).toBe(
      'UPLOAD_INCOMPLETE',
    );
    await put(target.url, target.headers, foldBytes);
    const fromUpload = await inspect(clients.labeler, { categoryId, uploadId: target.uploadId });
    const fromImage = await inspect(clients.labeler, { categoryId, imageId: foldImageId });
    expect(fromUpload.image).toBeNull();
    expect(fromUpload.score).toBeCloseTo(fromImage.score, 5);
    const input = await fetchImage(fromUpload.inputUrl as string);
    expect(sha256(input.bytes)).toBe(sha256(foldBytes));
    expect(await clients.labeler.errorCode(INSPECT, { input: { categoryId, uploadId: target.uploadId } })).toBe(
      'NOT_FOUND',
    );
    expect(await probe.keys(`inspection-uploads/${target.uploadId}`)).toEqual([]);
    expect(await probe.count('SELECT count(*) FROM inspection_upload WHERE id = $1', [target.uploadId])).toBe(0);

    // Another key's upload is not found for this caller.
    const other = (
      await clients.admin.data<Target>(request, { input: { contentType: 'image/png', byteSize: foldBytes.length } })
    ).requestInspectionUpload;
    await put(other.url, other.headers, foldBytes);
    expect(await clients.labeler.errorCode(INSPECT, { input: { categoryId, uploadId: other.uploadId } })).toBe(
      'NOT_FOUND',
    );
  });

  test('bytes that are not an image: INVALID_IMAGE, the upload is removed and no inspection is stored', async () => {
    const inspectionsBefore = await probe.count('SELECT count(*) FROM inspection');
    await anomalyMapsStored();
    const objectsBefore = await probe.keys('inspections/');
    const garbage = Buffer.from('this is not a PNG at all');
    const target = (
      await clients.labeler.data<{
        requestInspectionUpload: { uploadId: string; url: string; headers: Array<{ name: string; value: string }> };
      }>(
        'mutation($input: RequestInspectionUploadInput!) { requestInspectionUpload(input: $input) { uploadId url headers { name value } } }',
        { input: { contentType: 'image/png', byteSize: garbage.length } },
      )
    ).requestInspectionUpload;
    await put(target.url, target.headers, garbage);
    expect(await clients.labeler.errorCode(INSPECT, { input: { categoryId, uploadId: target.uploadId } })).toBe(
      'INVALID_IMAGE',
    );
    expect(await probe.count('SELECT count(*) FROM inspection')).toBe(inspectionsBefore);
    await anomalyMapsStored();
    expect(await probe.keys('inspections/')).toEqual(objectsBefore);
    expect(await probe.keys(`inspection-uploads/${target.uploadId}`)).toEqual([]);
    expect(
      await clients.labeler.errorCode(
        'mutation { requestInspectionUpload(input: { contentType: "image/svg+xml", byteSize: 10 }) { uploadId } }',
      ),
    ).toBe('INVALID_IMAGE');
  });

  test('inspectBatch: results in the order asked; more than INSPECT_BATCH_MAX_IMAGES is BATCH_TOO_LARGE; an unknown image stores nothing', async () => {
    const ids = [foldImageId, goodImageIds[0], goodImageIds[1], foldImageId] as string[];
    const data = await clients.labeler.data<{ inspectBatch: Inspection[] }>(
      `mutation($input: InspectBatchInput!) { inspectBatch(input: $input) { ${INSPECTION_FIELDS} } }`,
      {
        input: { categoryId, imageIds: ids },
      },
    );
    expect(data.inspectBatch.map((inspection) => inspection.image?.id)).toEqual(ids);
    const [first, , , last] = data.inspectBatch as [Inspection, Inspection, Inspection, Inspection];
    expect(last.score).toBeCloseTo(first.score, 5);
    expect(first.score).toBeGreaterThan((data.inspectBatch[1] as Inspection).score);

    const before = await probe.count('SELECT count(*) FROM inspection');
    const batch = 'mutation($input: InspectBatchInput!) { inspectBatch(input: $input) { id } }';
    expect(await clients.labeler.errorCode(batch, { input: { categoryId, imageIds: [...ids, goodImageIds[2]] } })).toBe(
      'BATCH_TOO_LARGE',
    );
    expect(
      await clients.labeler.errorCode(batch, {
        input: { categoryId, imageIds: [goodImageIds[0], '3f1c1f5e-0000-4000-8000-000000000000'] },
      }),
    ).toBe('NOT_FOUND');
    expect(await clients.labeler.errorCode(batch, { input: { categoryId, imageIds: [] } })).toBe('BAD_USER_INPUT');
    expect(await probe.count('SELECT count(*) FROM inspection')).toBe(before);
  });

  test('image URLs: their signature is the permission; a changed one, a changed expiry or another inspection’s path is refused', async () => {
    const inspection = await inspect(clients.labeler, { categoryId, imageId: goodImageIds[0] });
    const url = new URL(inspection.maskUrl);
    expect(url.pathname).toBe(`/inspections/${inspection.id}/mask.png`);
    const refusal = async (changed: URL): Promise<{ status: number; code: string }> => {
      const response = await fetch(changed);
      const body = (await response.json()) as { error: { code: string } };
      return { status: response.status, code: body.error.code };
    };
    const badSignature = new URL(url);
    badSignature.searchParams.set('signature', '0'.repeat(64));
    expect(await refusal(badSignature)).toEqual({ status: 403, code: 'INVALID_SIGNATURE' });
    const longer = new URL(url);
    longer.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
    expect(await refusal(longer)).toEqual({ status: 403, code: 'INVALID_SIGNATURE' });
    const otherKind = new URL(url);
    otherKind.pathname = `/inspections/${inspection.id}/overlay.png`;
    expect(await refusal(otherKind)).toEqual({ status: 403, code: 'INVALID_SIGNATURE' });
    const unsigned = new URL(url);
    unsigned.search = '';
    expect(await refusal(unsigned)).toEqual({ status: 403, code: 'INVALID_SIGNATURE' });
    const response = await fetch(url);
    expect([response.status, response.headers.get('content-type')]).toEqual([200, 'image/png']);
  });

  test('anomalyMapDataUrl: the exact map as an .npy file that numpy.load reads, the same bytes before and after the map moved to S3; its signature is its own', async () => {
    const inspected = await clients.labeler.data<{
      inspect: { id: string; score: number; anomalyMapUrl: string; anomalyMapDataUrl: string };
    }>('mutation($input: InspectInput!) { inspect(input: $input) { id score anomalyMapUrl anomalyMapDataUrl } }', {
      input: { categoryId, imageId: foldImageId },
    });
    const inspection = inspected.inspect;
    const url = new URL(inspection.anomalyMapDataUrl);
    expect(url.pathname).toBe(`/inspections/${inspection.id}/anomaly-map.npy`);
    expect(new URL(inspection.anomalyMapUrl).pathname).toBe(`/inspections/${inspection.id}/heatmap.png`);
    const download = async (): Promise<Buffer> => {
      const response = await fetch(url);
      expect([response.status, response.headers.get('content-type')]).toEqual([200, 'application/octet-stream']);
      return Buffer.from(await response.arrayBuffer());
    };
    const first = await download();
    await anomalyMapsStored();
    const moved = await download();
    expect(moved.equals(first)).toBe(true);
    // New exact maps are stored as NPY too.
    const stored = await probe.store.get(`inspections/${inspection.id}/anomaly-map.bin`);
    expect(stored.equals(first)).toBe(true);

    const decoded = decodeNpyFloat32(first);
    expect([decoded.height, decoded.width]).toEqual([demoModel.inputHeight, demoModel.inputWidth]);
    expect(Math.max(...decoded.values)).toBeCloseTo(inspection.score, 5);
    const loaded = await loadWithNumpy(first);
    if (!loaded) console.warn('no python3 with numpy here (nor .venv-training): numpy.load was not tried');
    else {
      expect(loaded.dtype).toBe('<f4');
      expect(loaded.shape).toEqual([demoModel.inputHeight, demoModel.inputWidth]);
      // The raw image score is the maximum of the map.
      expect(loaded.max).toBeCloseTo(inspection.score, 5);
    }

    const refused = async (changed: URL): Promise<{ status: number; code: string }> => {
      const response = await fetch(changed);
      return { status: response.status, code: ((await response.json()) as { error: { code: string } }).error.code };
    };
    const badSignature = new URL(url);
    badSignature.searchParams.set('signature', 'f'.repeat(64));
    expect(await refused(badSignature)).toEqual({ status: 403, code: 'INVALID_SIGNATURE' });
    // The heatmap's signature does not open the map, nor the other way round.
    const heatmapSigned = new URL(inspection.anomalyMapUrl);
    heatmapSigned.pathname = url.pathname;
    expect(await refused(heatmapSigned)).toEqual({ status: 403, code: 'INVALID_SIGNATURE' });
    const unknownFile = new URL(url);
    unknownFile.pathname = `/inspections/${inspection.id}/anomaly-map.csv`;
    expect(await refused(unknownFile)).toEqual({ status: 404, code: 'NOT_FOUND' });
  });

  test('a revoked key’s subscriptions end at once with UNAUTHENTICATED and later inspections do not reach it', async () => {
    const created = await clients.admin.data<{ createApiKey: { id: string; secret: string } }>(
      'mutation { createApiKey(name: "revoked while subscribed", role: VIEWER) { id secret } }',
    );
    const doomed = clients.viewer.withKey(created.createApiKey.secret);
    type Created = { inspectionCreated: { id: string } };
    const subscription = new SubscriptionRecorder<Created>(
      doomed.websocket(),
      'subscription($id: ID) { inspectionCreated(categoryId: $id) { id } }',
      { id: categoryId },
    );
    try {
      // Subscribed once an event arrives.
      for (let attempt = 0; attempt < 20 && subscription.results.length === 0; attempt += 1) {
        await inspect(clients.labeler, { categoryId, imageId: goodImageIds[1] });
        await subscription.waitFor((results) => results.length > 0, 500).catch(() => undefined);
      }
      expect(subscription.results.length).toBeGreaterThan(0);
      await clients.admin.data('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: created.createApiKey.id });
      const received = subscription.results.length;
      const after = await inspect(clients.labeler, { categoryId, imageId: goodImageIds[1] });
      await eventually(async () => {
        if (!subscription.done) throw new Error('the revoked key’s subscription is still open');
      }, 10_000);
      const ended = subscription.error as Array<{ extensions?: { code?: string } }>;
      expect(ended.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
      expect(subscription.results.slice(received).map((result) => result.data?.inspectionCreated.id)).not.toContain(
        after.id,
      );
      expect(await doomed.errorCode('{ inspections(first: 1) { totalCount } }')).toBe('UNAUTHENTICATED');
    } finally {
      subscription.dispose();
    }
  });

  test('inspections: filters and pages; inspection(id); the anomaly map is stored compactly with each row', async () => {
    type Page = {
      inspections: {
        totalCount: number;
        edges: Array<{ node: { id: string; score: number; isAnomalous: boolean; createdAt: string } }>;
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
    };
    const query =
      'query($filter: InspectionFilter, $after: String) { inspections(filter: $filter, first: 3, after: $after) { totalCount edges { node { id score isAnomalous createdAt } } pageInfo { hasNextPage endCursor } } }';
    const seen: string[] = [];
    let after: string | null = null;
    let total = 0;
    for (let guard = 0; guard < 100; guard += 1) {
      const page: Page = await clients.viewer.data<Page>(query, { filter: { categoryId }, after });
      total = page.inspections.totalCount;
      seen.push(...page.inspections.edges.map((edge) => edge.node.id));
      if (!page.inspections.pageInfo.hasNextPage) break;
      after = page.inspections.pageInfo.endCursor;
    }
    expect(total).toBeGreaterThanOrEqual(10);
    expect(new Set(seen).size).toBe(total);

    const anomalous = await clients.viewer.data<Page>(query, { filter: { categoryId, isAnomalous: true } });
    expect(anomalous.inspections.edges.every((edge) => edge.node.isAnomalous)).toBe(true);
    const all = await clients.viewer.data<Page>(query, { filter: { categoryId, modelId: demoModel.id } });
    const scores = all.inspections.edges.map((edge) => edge.node.score).sort((a, b) => a - b);
    const minScore = scores[Math.floor(scores.length / 2)] as number;
    const high = await clients.viewer.data<Page>(query, { filter: { categoryId, minScore } });
    expect(high.inspections.edges.every((edge) => edge.node.score >= minScore)).toBe(true);
    const newest = all.inspections.edges[0]?.node as { id: string; createdAt: string };
    const since = await clients.viewer.data<Page>(query, { filter: { categoryId, since: newest.createdAt } });
    expect(since.inspections.edges.map((edge) => edge.node.id)).toContain(newest.id);
    const until = await clients.viewer.data<Page>(query, { filter: { categoryId, until: newest.createdAt } });
    expect(until.inspections.edges.map((edge) => edge.node.id)).not.toContain(newest.id);

    const one = await clients.viewer.data<{ inspection: { id: string; model: { id: string } } }>(
      'query($id: ID!) { inspection(id: $id) { id model { id } } }',
      { id: newest.id },
    );
    expect(one.inspection).toEqual({ id: newest.id, model: { id: demoModel.id } });
    await anomalyMapsStored();
    const { rows } = await probe.query<{
      anomaly_map: Buffer | null;
      map_object_key: string;
      map_width: number;
      map_height: number;
      map_min: number | null;
      map_max: number | null;
    }>('SELECT anomaly_map, map_object_key, map_width, map_height, map_min, map_max FROM inspection WHERE id = $1', [
      newest.id,
    ]);
    const row = rows[0];
    // The map is written into the row with it, then moves to S3. The PNGs follow only when one
    // of their URLs is first fetched.
    expect([row?.anomaly_map, row?.map_min, row?.map_max]).toEqual([null, null, null]);
    expect(row?.map_object_key).toBe(`inspections/${newest.id}/anomaly-map.bin`);
    const keys = await probe.keys(`inspections/${newest.id}/`);
    expect(keys).toContain(`inspections/${newest.id}/anomaly-map.bin`);
    const possible = ['anomaly-map.bin', 'heatmap.png', 'mask.png', 'overlay.png'];
    expect(keys.filter((key) => !possible.some((name) => key === `inspections/${newest.id}/${name}`))).toEqual([]);
    const stored = decodeMapObject(await probe.store.get(row?.map_object_key as string));
    expect([stored.width, stored.height]).toEqual([demoModel.inputWidth, demoModel.inputHeight]);
    expect([stored.width, stored.height]).toEqual([row?.map_width, row?.map_height]);
    expect(Math.max(...stored.map)).toBeGreaterThan(Math.min(...stored.map));
  });

  test('setModelThreshold changes the threshold later inspections use', async () => {
    const before = await inspect(clients.labeler, { categoryId, imageId: goodImageIds[0] });
    const updated = await clients.admin.data<{ setModelThreshold: { threshold: number } }>(
      'mutation($id: ID!, $t: Float!) { setModelThreshold(id: $id, threshold: $t) { threshold } }',
      {
        id: demoModel.id,
        t: before.score / 2,
      },
    );
    expect(updated.setModelThreshold.threshold).toBe(before.score / 2);
    const after = await inspect(clients.labeler, { categoryId, imageId: goodImageIds[0] });
    expect(after.threshold).toBe(before.score / 2);
    expect(after.isAnomalous).toBe(true);
    expect(after.regions.length).toBeGreaterThan(0);
  });

  test('bad requests are BAD_USER_INPUT or NOT_FOUND', async () => {
    const code = (
      input: Record<string, unknown>,
      client: GraphQLTestClient = clients.labeler,
    ): Promise<string | undefined> => client.errorCode(INSPECT, { input });
    expect(await code({ categoryId, modelId: demoModel.id, imageId: goodImageIds[0] })).toBe('BAD_USER_INPUT');
    expect(await code({ categoryId })).toBe('BAD_USER_INPUT');
    expect(await code({ categoryId, imageId: goodImageIds[0], uploadId: goodImageIds[0] })).toBe('BAD_USER_INPUT');
    expect(await code({ categoryId, imageId: '3f1c1f5e-0000-4000-8000-000000000000' })).toBe('NOT_FOUND');
    expect(await code({ modelId: 'not-an-id', imageId: goodImageIds[0] })).toBe('NOT_FOUND');
    expect(await code({ categoryId: '3f1c1f5e-0000-4000-8000-000000000000', imageId: goodImageIds[0] })).toBe(
      'NOT_FOUND',
    );
    expect(await clients.viewer.errorCode('query { inspections(filter: { categoryId: "nope" }) { totalCount } }')).toBe(
      'BAD_USER_INPUT',
    );
  });
});

describe('parity with the trainer', () => {
  interface FixtureCase {
    name: string;
    image: string;
    label: string;
    anomaly_map: { file: string; shape: number[] };
    score_values: number[];
  }

  test('the service computes what PyTorch computes for the fixture images: score and stored anomaly map within 1e-4', async () => {
    const manifest = JSON.parse(await readFile(path.join(FIXTURES, 'manifest.json'), 'utf8')) as {
      model_sha256: string;
      parity_tolerance_abs: number;
      cases: FixtureCase[];
    };
    expect(manifest.model_sha256).toBe(sha256(modelBytes));
    expect(manifest.cases.length).toBeGreaterThan(0);
    const tolerance = manifest.parity_tolerance_abs;
    for (const fixture of manifest.cases) {
      const png = await readFile(path.join(FIXTURES, fixture.image));
      const target = (
        await clients.labeler.data<{
          requestInspectionUpload: { uploadId: string; url: string; headers: Array<{ name: string; value: string }> };
        }>(
          'mutation($input: RequestInspectionUploadInput!) { requestInspectionUpload(input: $input) { uploadId url headers { name value } } }',
          { input: { contentType: 'image/png', byteSize: png.length } },
        )
      ).requestInspectionUpload;
      await put(target.url, target.headers, png);
      const inspection = await inspect(clients.labeler, { modelId: demoModel.id, uploadId: target.uploadId });
      expect(Math.abs(inspection.score - (fixture.score_values[0] as number))).toBeLessThanOrEqual(tolerance);
      await anomalyMapsStored();

      const raw = await readFile(path.join(FIXTURES, fixture.anomaly_map.file));
      const expected = Float32Array.from({ length: raw.length / 4 }, (_, index) => raw.readFloatLE(index * 4));
      const { rows } = await probe.query<{ map_object_key: string }>(
        'SELECT map_object_key FROM inspection WHERE id = $1',
        [inspection.id],
      );
      const row = rows[0] as { map_object_key: string };
      const { map: stored, width, height } = decodeMapObject(await probe.store.get(row.map_object_key));
      expect([1, 1, height, width]).toEqual(fixture.anomaly_map.shape);
      // Storage quantises to 16 bits over the map's range; the rest is onnxruntime against PyTorch.
      const quantisation = (Math.max(...stored) - Math.min(...stored)) / 131070;
      let worst = 0;
      for (let i = 0; i < expected.length; i++)
        worst = Math.max(worst, Math.abs((stored[i] as number) - (expected[i] as number)));
      process.stdout.write(
        `parity ${fixture.name}: |score diff| ${Math.abs(inspection.score - (fixture.score_values[0] as number)).toExponential(1)}, max |map diff| ${worst.toExponential(1)} (storage step ${quantisation.toExponential(1)})\n`,
      );
      expect(worst).toBeLessThanOrEqual(tolerance + quantisation);
    }
  });
});
