// Issue 11, point 5: models are self-contained. A file with external data, a non-standard op
// domain or an oversized input is refused (INVALID_MODEL) before onnxruntime reads it, at
// registration and at every later load; a warm-up longer than MODEL_WARMUP_TIMEOUT_MS is
// refused too. Through the real server (and, for the timeout, the real services), with the
// rows and objects counted before and after.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type { ModelVersionEntity } from '../../src/db/entities/model-version.entity';
import { ModelLoaderService } from '../../src/services/model-loader.service';
import { ModelService } from '../../src/services/model.service';
import {
  activateModel,
  createCategory,
  createClients,
  registerModel,
  sha256,
  StorageProbe,
  type Clients,
} from '../inspection/helpers';
import {
  createCategory as createServicesCategory,
  createModelServices,
  type ModelServices,
} from '../support/model-services';
import { contractModel } from '../support/onnx-writer';
import { startTestServer, type TestServer } from '../support/test-server';

const SLOW_MODEL = path.resolve(__dirname, '..', 'fixtures', 'inference', 'slow.onnx');

/** Each breaks the contract's tiny model (which registers READY) in one way only. */
const REFUSED_FILES: ReadonlyArray<{ name: string; bytes: Buffer; reason: RegExp }> = [
  {
    // onnxruntime refuses absolute and ".." paths, not this one: the server's own package.json.
    name: 'external data',
    bytes: contractModel({ externalBias: { location: 'package.json', offset: 0, length: 4 } }),
    reason: /external files.*tensor "b".*location "package\.json"/,
  },
  {
    name: 'com.microsoft op',
    bytes: contractModel({ mapOp: { opType: 'Gelu', domain: 'com.microsoft' } }),
    reason: /op domain "com\.microsoft" is not a standard ONNX domain/,
  },
  {
    name: 'oversized input',
    bytes: contractModel({ size: [4097, 8] }),
    reason: /input "image" declares height 4097, above the limit of 4096 \(MODEL_MAX_INPUT_SIZE\)/,
  },
];

describe('model files through the server', () => {
  let server: TestServer;
  let clients: Clients;
  let probe: StorageProbe;
  let categoryId: string;

  beforeAll(async () => {
    server = await startTestServer();
    clients = await createClients(server);
    probe = new StorageProbe(server);
    ({ categoryId } = await createCategory(clients.labeler, 'model files', 'model-files'));
  });

  afterAll(async () => {
    await probe?.close();
    await server?.stop();
  });

  async function stored(): Promise<{ ready: number; versions: number; uploads: number; objects: string[] }> {
    return {
      ready: await probe.count("SELECT count(*) FROM model_version WHERE status = 'READY'"),
      versions: await probe.count('SELECT count(*) FROM model_version'),
      uploads: await probe.count('SELECT count(*) FROM model_upload'),
      objects: [...(await probe.keys('models/')), ...(await probe.keys('model-uploads/'))],
    };
  }

  async function assertHealthy(): Promise<void> {
    expect(await clients.viewer.data<{ health: { status: string } }>('{ health { status } }')).toEqual({
      health: { status: 'ok' },
    });
    expect(server.child.exitCode).toBeNull();
  }

  test('registerModel refuses external data, a non-standard op domain and an oversized input as INVALID_MODEL, keeping only what a refused registration keeps', async () => {
    const control = await registerModel(clients.admin, categoryId, 'control', contractModel());
    expect(control).toMatchObject({ status: 'READY', inputHeight: 8, inputWidth: 12 });
    const before = await stored();

    const refused = [];
    for (const file of REFUSED_FILES) {
      const version = await registerModel(clients.admin, categoryId, file.name, file.bytes);
      expect({ file: file.name, ...version }).toMatchObject({
        file: file.name,
        status: 'FAILED',
        failureCode: 'INVALID_MODEL',
        isActive: false,
        inputWidth: null,
        metadata: [],
      });
      expect(version.failureReason).toMatch(file.reason);
      refused.push(version);
    }

    // As for any refused registration: a FAILED version with its file, the upload consumed.
    const after = await stored();
    expect(after.ready).toBe(before.ready);
    expect(after.versions).toBe(before.versions + REFUSED_FILES.length);
    expect(after.uploads).toBe(before.uploads);
    expect(after.objects.sort()).toEqual(
      [...before.objects, ...refused.map((version) => `models/${version.id}/model.onnx`)].sort(),
    );
    for (const version of refused) {
      expect(
        await clients.admin.errorCode('mutation($id: ID!) { activateModel(id: $id) { id } }', { id: version.id }),
      ).toBe('MODEL_NOT_READY');
    }
    await assertHealthy();
  });

  test('activateModel refuses a READY version whose stored file breaks the rules (validated before they existed) with INVALID_MODEL', async () => {
    const version = await registerModel(clients.admin, categoryId, 'tampered', contractModel());
    expect(version.status).toBe('READY');
    const external = REFUSED_FILES[0].bytes;
    await probe.store.put(`models/${version.id}/model.onnx`, external, 'application/octet-stream');
    await probe.query('UPDATE model_version SET sha256 = $1, byte_size = $2 WHERE id = $3', [
      sha256(external),
      external.length,
      version.id,
    ]);
    const before = await stored();

    const result = await clients.admin.request('mutation($id: ID!) { activateModel(id: $id) { id } }', {
      id: version.id,
    });
    expect(result.errors?.[0]?.extensions?.code).toBe('INVALID_MODEL');
    expect(result.errors?.[0]?.message).toMatch(/external files.*package\.json/);

    expect(await probe.count('SELECT count(*) FROM model_version WHERE is_active')).toBe(0);
    expect(await stored()).toEqual(before);
    // The same category still activates a good version.
    const good = await registerModel(clients.admin, categoryId, 'good', contractModel());
    expect((await activateModel(clients.admin, good.id)).isActive).toBe(true);
    await assertHealthy();
  });
});

describe('model warm-up timeout (real services)', () => {
  let services: ModelServices;
  let categoryId: string;
  let slowBytes: Buffer;
  /** A loader and registry like the server's, on the same engine, with a 1 ms warm-up timeout. */
  let impatientLoader: ModelLoaderService;
  let impatientModels: ModelService;

  beforeAll(async () => {
    services = await createModelServices();
    categoryId = await createServicesCategory(services, 'warm-up-timeout');
    slowBytes = await readFile(SLOW_MODEL);
    const { db, objectStore, pubSub, categories, snapshots } = services;
    const logger = pino({ level: 'silent' });
    impatientLoader = new ModelLoaderService(db, objectStore, services.inspection.engine, null, logger, {
      warmupTimeoutMs: 1,
    });
    impatientModels = new ModelService(
      db,
      objectStore,
      impatientLoader,
      categories,
      snapshots,
      pubSub,
      { maxBytes: 64 * 1024 * 1024, uploadUrlExpirySeconds: 900, accuracyTolerancePoints: 0.5 },
      logger,
    );
  });

  afterAll(async () => {
    await impatientLoader?.stop();
    await services?.close();
  });

  const statusCounts = async (): Promise<Record<string, number>> => {
    const rows = await services.dataSource.query<Array<{ status: string; count: string }>>(
      'SELECT status, count(*) FROM model_version GROUP BY status',
    );
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
  };

  const modelObjects = async (): Promise<string[]> => {
    const keys: string[] = [];
    for await (const object of services.objectStore.list('models/')) keys.push(object.key);
    return keys.sort();
  };

  test('a registration or load whose warm-up outlasts MODEL_WARMUP_TIMEOUT_MS is refused as INVALID_MODEL, its session released, and the engine keeps serving', async () => {
    // With the default timeout the model is fine.
    const ready: ModelVersionEntity = await services.inspection.models.registerFile({
      categoryId,
      name: 'slow',
      bytes: slowBytes,
      createdBy: null,
    });
    expect(ready.status).toBe('READY');
    const before = await statusCounts();
    const objectsBefore = await modelObjects();

    const refused = await impatientModels.registerFile({ categoryId, name: 'slow', bytes: slowBytes, createdBy: null });
    expect(refused).toMatchObject({ status: 'FAILED', failureCode: 'INVALID_MODEL', inputWidth: null });
    expect(refused.failureReason).toMatch(/warm-up timeout of 1 ms \(MODEL_WARMUP_TIMEOUT_MS\)/);
    // As for any refused registration: the FAILED version and its file.
    expect(await statusCounts()).toEqual({ ...before, FAILED: (before.FAILED ?? 0) + 1 });
    expect(await modelObjects()).toEqual([...objectsBefore, `models/${refused.id}/model.onnx`].sort());

    const load = impatientLoader.ensureLoaded(ready);
    await expect(load).rejects.toMatchObject({
      code: 'INVALID_MODEL',
      message: expect.stringMatching(/warm-up timeout of 1 ms/),
    });
    // Not retried while the refused load still runs on the worker.
    await expect(impatientLoader.ensureLoaded(ready)).rejects.toMatchObject({ code: 'INVALID_MODEL' });

    // Once onnxruntime has finished, nothing of the refused load or validation stays loaded.
    await impatientLoader.settled();
    expect(services.inspection.engine.isWarm(ready.id)).toBe(false);
    expect(services.inspection.engine.listModels()).toEqual([]);

    // The engine still serves: the same model loads within the default timeout and infers.
    const loaded = await services.inspection.loader.ensureLoaded(ready);
    const [height, width] = loaded.inputSize;
    const result = await services.inspection.engine.infer(ready.id, new Float32Array(3 * height * width));
    expect(Number.isFinite(result.score)).toBe(true);
    expect(services.inspection.engine.listModels().map((model) => model.key)).toEqual([ready.id]);
  });
});
