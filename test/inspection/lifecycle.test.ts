// Start-up: active models are loaded before /readyz says ready, and the first embedded start
// seeds the demo so that inspect works at once. Crash: an answered inspection survives a kill -9
// right after its answer, images included.
import path from 'node:path';
import sharp from 'sharp';
import { GraphQLTestClient } from '../support/graphql-client';
import { testS3Settings, uniqueName } from '../support/resources';
import {
  baseServerEnv,
  freePort,
  probeRoute,
  spawnServer,
  startTestServer,
  type TestServer,
} from '../support/test-server';
import {
  activateModel,
  createCategory,
  createClients,
  eventually,
  generateSamples,
  inspect,
  readDemoModel,
  registerModel,
  StorageProbe,
  uploadImages,
} from './helpers';

test('on start the active models are loaded; /readyz stays not ready while one cannot be warmed up, and turns ready once it is', async () => {
  const modelBytes = await readDemoModel();
  const first = await startTestServer();
  let modelId: string;
  let categoryId: string;
  let imageId: string;
  try {
    const clients = await createClients(first);
    const samples = await generateSamples(modelBytes, { trainCount: 0, testGoodCount: 1, testDefectCount: 0 });
    ({ categoryId } = await createCategory(clients.labeler, 'readiness', samples.category));
    [imageId] = (await uploadImages(clients.labeler, categoryId, samples.files)) as [string];
    const model = await registerModel(clients.admin, categoryId, 'demo', modelBytes);
    modelId = (await activateModel(clients.admin, model.id)).id;
    const { body } = await probeRoute(first, '/readyz');
    expect(body.checks?.find((check) => check.name === 'models')).toEqual({ name: 'models', ok: true });
    // No SEED_DEMO and an external database: nothing was seeded.
    const datasets = await clients.viewer.data<{ datasets: { edges: Array<{ node: { name: string } }> } }>(
      '{ datasets(first: 50) { edges { node { name } } } }',
    );
    expect(datasets.datasets.edges.map((edge) => edge.node.name)).not.toContain('Demo');
  } finally {
    await first.stop();
  }

  // The stored file no longer matches its checksum: the restarted server cannot warm the model up.
  const probe = new StorageProbe(first);
  await probe.store.put(`models/${modelId}/model.onnx`, Buffer.from('damaged'), 'application/octet-stream');
  const second = await spawnServer(first.env, {
    adminKey: first.adminKey,
    databaseUrl: first.databaseUrl,
    bucket: first.bucket,
  });
  try {
    // /readyz names the failing check; why it fails is in the log only (its callers are anonymous).
    const failureLogged = (): boolean =>
      second
        .output()
        .split('\n')
        .some((line) => line.includes('readiness check failed') && line.includes('SHA-256') && line.includes(modelId));
    const notReady = await eventually(async () => {
      const answer = await probeRoute(second, '/readyz');
      if (answer.body.checks?.find((entry) => entry.name === 'models')?.ok !== false || !failureLogged())
        throw new Error(`models check not failing on the damaged file yet: ${answer.text}`);
      return answer;
    });
    expect(notReady.status).toBe(503);
    expect(notReady.body.ready).toBe(false);
    expect(notReady.body.checks?.find((check) => check.name === 'models')).toEqual({
      name: 'models',
      ok: false,
      reason: 'failed',
    });
    expect(notReady.text).not.toMatch(new RegExp(`SHA-256|${modelId}`));

    await probe.store.put(`models/${modelId}/model.onnx`, modelBytes, 'application/octet-stream');
    const ready = await eventually(async () => {
      const answer = await probeRoute(second, '/readyz');
      if (answer.status !== 200) throw new Error(`not ready yet: ${answer.text}`);
      return answer;
    });
    expect(ready.body.checks?.find((check) => check.name === 'models')).toEqual({ name: 'models', ok: true });
    const clients = await createClients(second);
    const inspection = await inspect(clients.labeler, { categoryId, imageId });
    expect(inspection.model.id).toBe(modelId);
  } finally {
    await probe.close();
    await second.stop();
  }
});

test('an inspection answered just before a kill -9 is there after a restart, and the URLs of its answer return its images', async () => {
  const modelBytes = await readDemoModel();
  // A fixed port: the URLs in the answer must still point at the restarted server.
  const port = String(await freePort());
  const first = await startTestServer({ env: { PORT: port } });
  let second: TestServer | null = null;
  try {
    const clients = await createClients(first);
    const samples = await generateSamples(modelBytes, { trainCount: 0, testGoodCount: 0, testDefectCount: 1 });
    const { categoryId } = await createCategory(clients.labeler, 'durability', samples.category);
    const [imageId] = (await uploadImages(clients.labeler, categoryId, samples.files)) as [string];
    const model = await registerModel(clients.admin, categoryId, 'demo', modelBytes);
    await activateModel(clients.admin, model.id);

    const answered = await inspect(clients.labeler, { categoryId, imageId });
    first.child.kill('SIGKILL');
    expect((await first.stop()).signal).toBe('SIGKILL');

    second = await spawnServer(first.env, {
      adminKey: first.adminKey,
      databaseUrl: first.databaseUrl,
      bucket: first.bucket,
    });
    const restarted = await createClients(second);
    const found = await restarted.viewer.data<{ inspection: { id: string; score: number; regions: unknown[] } | null }>(
      'query($id: ID!) { inspection(id: $id) { id score regions { x y width height area meanScore maxScore } } }',
      { id: answered.id },
    );
    expect(found.inspection).toEqual({ id: answered.id, score: answered.score, regions: answered.regions });

    // The right images: pixel for pixel those of the same image inspected again, uninterrupted.
    const again = await inspect(restarted.labeler, { categoryId, imageId });
    const pixels = async (url: string): Promise<Buffer> => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: ${await response.text()}`);
      expect(response.headers.get('content-type')).toBe('image/png');
      return sharp(Buffer.from(await response.arrayBuffer()))
        .raw()
        .toBuffer();
    };
    for (const field of ['anomalyMapUrl', 'overlayUrl', 'maskUrl'] as const) {
      expect(answered[field].startsWith(`http://127.0.0.1:${port}/`)).toBe(true);
      expect((await pixels(answered[field])).equals(await pixels(again[field]))).toBe(true);
    }
  } finally {
    await first.stop();
    await second?.stop();
  }
});

test('the first start with an embedded database seeds the demo: a generated category with the bundled model active; later starts do not seed again', async () => {
  const s3 = testS3Settings(uniqueName('seed-'));
  const adminKey = `test-admin-${uniqueName('')}-0123456789abcdef`;
  const env: Record<string, string> = {
    ...baseServerEnv(),
    // No DATABASE_URL: the server starts its own embedded PostgreSQL under DATA_DIR.
    DATA_DIR: path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('embedded-')),
    EMBEDDED_POSTGRES_PORT: String(await freePort()),
    S3_ENDPOINT: s3.endpoint ?? '',
    S3_BUCKET: s3.bucket,
    AWS_ACCESS_KEY_ID: s3.credentials?.accessKeyId ?? '',
    AWS_SECRET_ACCESS_KEY: s3.credentials?.secretAccessKey ?? '',
    ADMIN_API_KEY: adminKey,
  };
  const known = { adminKey, databaseUrl: '', bucket: s3.bucket };
  type Demo = {
    datasets: {
      edges: Array<{
        node: {
          id: string;
          name: string;
          categories: Array<{
            id: string;
            name: string;
            activeModel: { id: string; name: string; status: string; isActive: boolean } | null;
          }>;
        };
      }>;
    };
  };
  const demoQuery =
    '{ datasets(first: 50) { edges { node { id name categories { id name activeModel { id name status isActive } } } } } }';

  let firstModelId: string;
  const first = await spawnServer(env, known);
  try {
    const client = new GraphQLTestClient(first.url, adminKey);
    const demo = (await client.data<Demo>(demoQuery)).datasets.edges.map((edge) => edge.node);
    expect(demo.map((dataset) => dataset.name)).toEqual(['Demo']);
    const category = demo[0]?.categories[0];
    expect(category?.activeModel).toMatchObject({ name: 'demo', status: 'READY', isActive: true });
    firstModelId = category?.activeModel?.id as string;
    const images = await client.data<{
      images: { totalCount: number; edges: Array<{ node: { id: string; defectType: string | null } }> };
    }>('query($id: ID!) { images(categoryId: $id, first: 100) { totalCount edges { node { id defectType } } } }', {
      id: category?.id,
    });
    expect(images.images.totalCount).toBeGreaterThan(10);
    const defective = images.images.edges.find((edge) => edge.node.defectType !== null)?.node.id;
    const inspection = await inspect(client, { categoryId: category?.id, imageId: defective });
    expect(inspection.model.id).toBe(firstModelId);
  } finally {
    await first.stop();
  }

  const second = await spawnServer(env, known);
  try {
    const client = new GraphQLTestClient(second.url, adminKey);
    const demo = (await client.data<Demo>(demoQuery)).datasets.edges.map((edge) => edge.node);
    expect(demo.map((dataset) => dataset.name)).toEqual(['Demo']);
    expect(demo[0]?.categories.map((category) => category.activeModel?.id)).toEqual([firstModelId]);
    const versions = await client.data<{ models: { totalCount: number } }>(
      'query($id: ID!) { models(categoryId: $id) { totalCount } }',
      { id: demo[0]?.categories[0]?.id },
    );
    expect(versions.models.totalCount).toBe(1);
  } finally {
    await second.stop();
  }
});
