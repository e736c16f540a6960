// Evaluations over HTTP and graphql-ws, with the server's own (in-process) job workers: a
// generated category imported, a model registered, an evaluation followed to SUCCEEDED and its
// metrics checked against the metrics recomputed from the stored per-image maps; thresholds,
// listing, refusals, and models that fail part-way.
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { pngMask } from '../datasets/helpers';
import {
  createCategory,
  createClients,
  eventually,
  fetchImage,
  registerModel,
  StorageProbe,
  uploadImages,
  type Clients,
  type ModelVersion,
  type SampleFile,
} from '../inspection/helpers';
import { SubscriptionRecorder } from '../support/graphql-client';
import { uniqueName } from '../support/resources';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  EVALUATION_FIELDS,
  EVALUATION_PROGRESS,
  evaluationModelPath,
  followEvaluation,
  generateCategory,
  importCategory,
  NAN_WHEN_BRIGHT_MODEL_PATH,
  recomputeFromStorage,
  reportedMetrics,
  START_EVALUATION,
  startEvaluation,
  type Evaluation,
} from './helpers';

const BATCH_SIZE = 4;
const TEST_GOOD = 6;
const TEST_PER_DEFECT = 2;

let root: string;
let server: TestServer;
let clients: Clients;
let probe: StorageProbe;
let modelBytes: Buffer;
let categoryId: string;
let model: ModelVersion;
let testImageCount: number;
let defectTypes: string[];
let finished: Evaluation;

beforeAll(async () => {
  root = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('evaluations-'));
  await mkdir(root, { recursive: true });
  modelBytes = await readFile(evaluationModelPath());
  const generated = await generateCategory(path.join(root, 'mvtec'), modelBytes, {
    testGoodCount: TEST_GOOD,
    testDefectCount: TEST_PER_DEFECT,
  });
  defectTypes = Object.keys(generated.counts.test)
    .filter(
      (label) => label !== 'good' && (generated.counts.test[label as keyof typeof generated.counts.test] ?? 0) > 0,
    )
    .sort();
  testImageCount = generated.files.filter((file) => file.split === 'test').length;
  server = await startTestServer({
    env: { IMPORT_ROOTS: root, EVALUATION_BATCH_SIZE: String(BATCH_SIZE) },
  });
  clients = await createClients(server);
  probe = new StorageProbe(server);
  categoryId = await importCategory(clients.labeler, 'evaluation api', generated);
  model = await registerModel(clients.admin, categoryId, 'evaluated', modelBytes);
  expect(model.status).toBe('READY');
});

afterAll(async () => {
  await probe?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('an evaluation end to end', () => {
  test('QUEUED at once, followed over graphql-ws to SUCCEEDED; the reported metrics equal those recomputed from the stored maps', async () => {
    const started = await startEvaluation(clients.labeler, { modelId: model.id, categoryId });
    expect(started).toMatchObject({
      status: 'QUEUED',
      processed: 0,
      total: testImageCount,
      auproLimit: 0.3,
      imageScoreRule: 'max',
      imageAuroc: null,
      perDefect: [],
      rocCurve: [],
      error: null,
    });
    expect(started.model.id).toBe(model.id);
    expect(started.category.id).toBe(categoryId);
    expect(started.snapshot).not.toBeNull();

    const states = await followEvaluation(clients.viewer, started.id);
    finished = states[states.length - 1] as Evaluation;
    expect(finished.status).toBe('SUCCEEDED');
    // The subscription starts from the current state and only ever moves forward.
    const order = ['QUEUED', 'RUNNING', 'SUCCEEDED'];
    states.forEach((state, index) => {
      if (index === 0) return;
      const previous = states[index - 1] as Evaluation;
      expect(order.indexOf(state.status)).toBeGreaterThanOrEqual(order.indexOf(previous.status));
      expect(state.processed).toBeGreaterThanOrEqual(previous.processed);
    });
    expect(finished).toMatchObject({
      processed: testImageCount,
      total: testImageCount,
      attempts: 1,
      error: null,
      goodImageCount: TEST_GOOD,
      defectiveImageCount: testImageCount - TEST_GOOD,
    });
    expect(finished.startedAt).not.toBeNull();
    expect(finished.finishedAt).not.toBeNull();
    expect([finished.mapHeight, finished.mapWidth]).toEqual([model.inputHeight, model.inputWidth]);
    expect(finished.perDefect.map((entry) => [entry.defectType, entry.imageCount])).toEqual(
      defectTypes.map((type) => [type, TEST_PER_DEFECT]),
    );

    const recomputed = await recomputeFromStorage(probe, finished.id, finished.auproLimit);
    expect(reportedMetrics(finished)).toEqual(recomputed.metrics);
    expect(recomputed.resultCount).toBe(testImageCount);
    expect(recomputed.scoreRules).toEqual(['max']);
    expect(recomputed.storedScoresMatchMaps).toBe(true);
    expect(await probe.keys(`evaluations/${finished.id}/maps/`)).toHaveLength(testImageCount);

    expect(finished.rocCurve[0]).toEqual({ x: 0, y: 0 });
    expect(finished.rocCurve[finished.rocCurve.length - 1]).toEqual({ x: 1, y: 1 });
    expect(finished.proCurve[0]).toEqual({ x: 0, y: 0 });
    expect(finished.proCurve.every((point) => point.x <= finished.auproLimit)).toBe(true);
  });

  test('the evaluation is readable by id and listed by model and by category, newest first; a finished one replays its final state', async () => {
    const byId = await clients.viewer.data<{ evaluation: Evaluation }>(
      `query($id: ID!) { evaluation(id: $id) { ${EVALUATION_FIELDS} } }`,
      { id: finished.id },
    );
    expect(byId.evaluation).toEqual(finished);
    for (const filter of [{ modelId: model.id }, { categoryId }, { modelId: model.id, categoryId }]) {
      const page = await clients.viewer.data<{
        evaluations: { totalCount: number; edges: Array<{ node: { id: string } }> };
      }>(
        'query($modelId: ID, $categoryId: ID) { evaluations(modelId: $modelId, categoryId: $categoryId, first: 5) { totalCount edges { node { id } } } }',
        filter,
      );
      expect(page.evaluations.edges[0]?.node.id).toBe(finished.id);
    }
    const replay = await followEvaluation(clients.viewer, finished.id);
    expect(replay).toEqual([finished]);
    const snapshot = await clients.viewer.data<{ snapshot: { name: string; imageCount: number } }>(
      'query($id: ID!) { snapshot(id: $id) { name imageCount } }',
      { id: finished.snapshot?.id },
    );
    expect(snapshot.snapshot.name).toBe(`evaluation ${finished.id}`);
  });

  test('a given snapshot and AUPRO limit: the same image metrics, AUPRO at the new limit, still equal to the recomputation', async () => {
    const started = await startEvaluation(clients.labeler, {
      modelId: model.id,
      categoryId,
      snapshotId: finished.snapshot?.id,
      auproLimit: 0.1,
    });
    expect(started.snapshot?.id).toBe(finished.snapshot?.id);
    const states = await followEvaluation(clients.viewer, started.id);
    const again = states[states.length - 1] as Evaluation;
    expect(again).toMatchObject({
      status: 'SUCCEEDED',
      auproLimit: 0.1,
      imageAuroc: finished.imageAuroc,
      imageF1Threshold: finished.imageF1Threshold,
      pixelAuroc: finished.pixelAuroc,
    });
    expect(again.proCurve.every((point) => point.x <= 0.1)).toBe(true);
    expect(reportedMetrics(again)).toEqual((await recomputeFromStorage(probe, again.id, 0.1)).metrics);
  });

  test('applyEvaluationThreshold (ADMIN) sets the model threshold to the image F1-max threshold', async () => {
    const mutation = `mutation($id: ID!) { applyEvaluationThreshold(evaluationId: $id) { id threshold } }`;
    expect(await clients.labeler.errorCode(mutation, { id: finished.id })).toBe('FORBIDDEN');
    const applied = await clients.admin.data<{ applyEvaluationThreshold: { id: string; threshold: number } }>(
      mutation,
      { id: finished.id },
    );
    expect(applied.applyEvaluationThreshold).toEqual({ id: model.id, threshold: finished.imageF1Threshold });
  });
});

describe('per-image results', () => {
  type EvaluationImageNode = {
    score: number;
    isAnomalous: boolean | null;
    heatmapUrl: string;
    overlayUrl: string;
    image: { id: string; defectType: string | null; width: number; height: number };
  };
  type ImagesPage = {
    totalCount: number;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
    edges: Array<{ cursor: string; node: EvaluationImageNode }>;
  };
  const IMAGES = `query($id: ID!, $first: Int, $after: String, $defectType: String, $good: Boolean, $misclassified: Boolean, $orderBy: EvaluationImageOrder) {
    evaluation(id: $id) { images(first: $first, after: $after, defectType: $defectType, good: $good, misclassified: $misclassified, orderBy: $orderBy) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { score isAnomalous heatmapUrl overlayUrl image { id defectType width height } } } } } }`;
  const images = async (variables: Record<string, unknown>): Promise<ImagesPage> =>
    (
      await clients.viewer.data<{ evaluation: { images: ImagesPage } }>(IMAGES, {
        id: finished.id,
        first: 100,
        ...variables,
      })
    ).evaluation.images;
  const ids = (page: ImagesPage): string[] => page.edges.map((edge) => edge.node.image.id);

  test('every TEST image once, by score; pages of 3 follow on; isAnomalous at the F1 threshold; filters and misclassified agree with the report', async () => {
    const all = await images({});
    expect(all.totalCount).toBe(testImageCount);
    expect(all.edges).toHaveLength(testImageCount);
    expect(new Set(ids(all)).size).toBe(testImageCount);
    const scores = all.edges.map((edge) => edge.node.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const threshold = finished.imageF1Threshold as number;
    expect(threshold).not.toBeNull();
    for (const { node } of all.edges) expect(node.isAnomalous).toBe(node.score >= threshold);

    const ascending = await images({ orderBy: 'SCORE_ASC' });
    expect(ascending.edges.map((edge) => edge.node.score)).toEqual([...scores].reverse());

    const paged: string[] = [];
    let after: string | null = null;
    for (let pageCount = 0; ; pageCount += 1) {
      expect(pageCount).toBeLessThan(testImageCount);
      const page: ImagesPage = await images({ first: 3, after });
      expect(page.totalCount).toBe(testImageCount);
      paged.push(...ids(page));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(paged).toEqual(ids(all));

    const good = await images({ good: true });
    const defective = await images({ good: false });
    expect([good.totalCount, defective.totalCount]).toEqual([finished.goodImageCount, finished.defectiveImageCount]);
    expect(good.edges.every((edge) => edge.node.image.defectType === null)).toBe(true);
    expect(defective.edges.every((edge) => edge.node.image.defectType !== null)).toBe(true);
    for (const defectType of defectTypes) {
      const ofType = await images({ defectType });
      expect(ofType.totalCount).toBe(TEST_PER_DEFECT);
      expect(ofType.edges.every((edge) => edge.node.image.defectType === defectType)).toBe(true);
    }
    expect((await images({ defectType: 'no such defect' })).totalCount).toBe(0);

    const wrong = (node: EvaluationImageNode): boolean => node.isAnomalous !== (node.image.defectType !== null);
    const misclassified = await images({ misclassified: true });
    const right = await images({ misclassified: false });
    expect(ids(misclassified).sort()).toEqual(
      all.edges
        .filter((edge) => wrong(edge.node))
        .map((edge) => edge.node.image.id)
        .sort(),
    );
    expect(misclassified.totalCount + right.totalCount).toBe(testImageCount);
    // The verdicts are those of the report's F1-max.
    const truePositives = all.edges.filter((edge) => edge.node.isAnomalous && edge.node.image.defectType !== null);
    expect((2 * truePositives.length) / (2 * truePositives.length + misclassified.totalCount)).toBeCloseTo(
      finished.imageF1Max as number,
      10,
    );
    const falseNegatives = await images({ misclassified: true, good: false });
    expect(falseNegatives.totalCount).toBe((finished.defectiveImageCount as number) - truePositives.length);
  });

  test('page size and cursor refusals', async () => {
    for (const variables of [{ first: 0 }, { first: 101 }, { after: 'not a cursor' }]) {
      const result = await clients.viewer.request(IMAGES, { id: finished.id, ...variables });
      expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });

  test('heatmap and overlay: PNGs of the image size, drawn once and kept in S3; a changed signature or another image’s path is refused', async () => {
    const worst = (await images({ first: 2, good: false })).edges.map((edge) => edge.node);
    const [node, other] = worst as [EvaluationImageNode, EvaluationImageNode];
    const heatmapUrl = new URL(node.heatmapUrl);
    expect(heatmapUrl.pathname).toBe(`/evaluations/${finished.id}/images/${node.image.id}/heatmap.png`);
    const prefix = `evaluations/${finished.id}/images/${node.image.id}/`;
    expect(await probe.keys(prefix)).toEqual([]);
    const [heatmap, overlay] = await Promise.all([fetchImage(node.heatmapUrl), fetchImage(node.overlayUrl)]);
    for (const png of [heatmap, overlay]) {
      expect([png.format, png.contentType, png.channels]).toEqual(['png', 'image/png', 3]);
      expect([png.width, png.height]).toEqual([node.image.width, node.image.height]);
    }
    expect(heatmap.bytes.equals(overlay.bytes)).toBe(false);
    await eventually(async () => {
      expect((await probe.keys(prefix)).sort()).toEqual([`${prefix}heatmap.png`, `${prefix}overlay.png`]);
    }, 20_000);
    expect((await probe.store.get(`${prefix}heatmap.png`)).equals(heatmap.bytes)).toBe(true);
    expect((await fetchImage(node.heatmapUrl)).bytes.equals(heatmap.bytes)).toBe(true);

    const refused = async (changed: URL): Promise<{ status: number; code: string }> => {
      const response = await fetch(changed);
      return { status: response.status, code: ((await response.json()) as { error: { code: string } }).error.code };
    };
    const badSignature = new URL(heatmapUrl);
    badSignature.searchParams.set('signature', '0'.repeat(64));
    expect(await refused(badSignature)).toEqual({ status: 403, code: 'INVALID_SIGNATURE' });
    const otherImage = new URL(heatmapUrl);
    otherImage.pathname = `/evaluations/${finished.id}/images/${other.image.id}/heatmap.png`;
    expect(await refused(otherImage)).toEqual({ status: 403, code: 'INVALID_SIGNATURE' });
    const mask = new URL(heatmapUrl);
    mask.pathname = `/evaluations/${finished.id}/images/${node.image.id}/mask.png`;
    expect(await refused(mask)).toEqual({ status: 404, code: 'NOT_FOUND' });
  });
});

describe('refusals', () => {
  test('roles, unknown ids, bad limits, another category’s model or snapshot, models not READY', async () => {
    const input = { modelId: model.id, categoryId };
    expect(await clients.viewer.errorCode(START_EVALUATION, { input })).toBe('FORBIDDEN');
    expect(
      await clients.labeler.errorCode(START_EVALUATION, {
        input: { ...input, modelId: '00000000-0000-4000-8000-000000000000' },
      }),
    ).toBe('NOT_FOUND');
    expect(await clients.labeler.errorCode(START_EVALUATION, { input: { ...input, categoryId: 'not-a-uuid' } })).toBe(
      'NOT_FOUND',
    );
    for (const auproLimit of [0, -0.1, 1.5])
      expect(await clients.labeler.errorCode(START_EVALUATION, { input: { ...input, auproLimit } })).toBe(
        'BAD_USER_INPUT',
      );

    const other = await createCategory(clients.labeler, 'evaluation refusals', 'other');
    expect(
      await clients.labeler.errorCode(START_EVALUATION, { input: { ...input, categoryId: other.categoryId } }),
    ).toBe('BAD_USER_INPUT');
    const otherSnapshot = await clients.labeler.data<{ createSnapshot: { id: string } }>(
      'mutation($id: ID!) { createSnapshot(categoryId: $id, name: "empty") { id } }',
      { id: other.categoryId },
    );
    expect(
      await clients.labeler.errorCode(START_EVALUATION, {
        input: { ...input, snapshotId: otherSnapshot.createSnapshot.id },
      }),
    ).toBe('NOT_FOUND');

    const garbage = await registerModel(clients.admin, categoryId, 'garbage', Buffer.from('not an onnx file at all'));
    expect(garbage.status).toBe('FAILED');
    expect(await clients.labeler.errorCode(START_EVALUATION, { input: { ...input, modelId: garbage.id } })).toBe(
      'MODEL_NOT_READY',
    );

    expect(
      (
        await clients.viewer.data<{ evaluation: null }>(
          'query { evaluation(id: "00000000-0000-4000-8000-000000000000") { id } }',
        )
      ).evaluation,
    ).toBeNull();
    const websocket = clients.viewer.websocket();
    const recorder = new SubscriptionRecorder(websocket, EVALUATION_PROGRESS, {
      id: '00000000-0000-4000-8000-000000000000',
    });
    try {
      const results = await recorder.waitFor((all) => all.length > 0);
      expect(results[0]?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    } finally {
      recorder.dispose();
      await websocket.dispose();
    }
  });

  test('a category without TEST images: BAD_USER_INPUT, and the snapshot taken for it is removed again', async () => {
    const empty = await createCategory(clients.labeler, 'evaluation without test images', 'empty');
    const emptyModel = await registerModel(clients.admin, empty.categoryId, 'evaluated', modelBytes);
    expect(
      await clients.labeler.errorCode(START_EVALUATION, {
        input: { modelId: emptyModel.id, categoryId: empty.categoryId },
      }),
    ).toBe('BAD_USER_INPUT');
    expect(await probe.count('SELECT count(*) FROM snapshot WHERE category_id = $1', [empty.categoryId])).toBe(0);
    expect(await probe.count('SELECT count(*) FROM evaluation WHERE category_id = $1', [empty.categoryId])).toBe(0);
  });

  test('finished evaluations cannot be cancelled; only SUCCEEDED ones have a threshold to apply', async () => {
    const cancel = 'mutation($id: ID!) { cancelEvaluation(id: $id) { id status } }';
    const apply = 'mutation($id: ID!) { applyEvaluationThreshold(evaluationId: $id) { id } }';
    const result = await clients.labeler.request(cancel, { id: finished.id });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'EVALUATION_NOT_CANCELLABLE', status: 'SUCCEEDED' });
    expect(await clients.labeler.errorCode(cancel, { id: '00000000-0000-4000-8000-000000000000' })).toBe('NOT_FOUND');
    expect(await clients.viewer.errorCode(cancel, { id: finished.id })).toBe('FORBIDDEN');
    expect(await clients.admin.errorCode(apply, { id: '00000000-0000-4000-8000-000000000000' })).toBe('NOT_FOUND');
    const failed = await probe.query<{ id: string }>(`SELECT id FROM evaluation WHERE status = 'FAILED' LIMIT 1`);
    if (failed.rows[0])
      expect(await clients.admin.errorCode(apply, { id: failed.rows[0].id })).toBe('EVALUATION_NOT_FINISHED');
  });
});

/** A 32×32 PNG of grey level `level` with a little noise, so that images differ. */
async function flatImage(level: number, seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(32 * 32 * 3);
  for (let index = 0; index < pixels.length; index += 1)
    pixels[index] = Math.max(0, Math.min(255, level + ((index * 7 + seed * 13) % 9) - 4));
  return sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
    .png()
    .toBuffer();
}

describe('models that fail', () => {
  test('a model that fails part-way (non-finite maps on bright images) ends FAILED with the reason; the images done before stay counted', async () => {
    const bright = await createCategory(clients.labeler, 'evaluation of a failing model', 'bright');
    // Good images come first in the run (batch 1), the near-white defective ones after (batch 2).
    const good: SampleFile[] = await Promise.all(
      Array.from({ length: BATCH_SIZE }, async (_, index) => ({
        bytes: await flatImage(128, index),
        mask: null,
        split: 'TEST' as const,
        defectType: null,
      })),
    );
    const defective: SampleFile[] = await Promise.all(
      Array.from({ length: 2 }, async (_, index) => ({
        bytes: await flatImage(252, index),
        mask: await pngMask(),
        split: 'TEST' as const,
        defectType: 'glare',
      })),
    );
    await uploadImages(clients.labeler, bright.categoryId, good);
    await uploadImages(clients.labeler, bright.categoryId, defective);
    const failing = await registerModel(
      clients.admin,
      bright.categoryId,
      'nan when bright',
      await readFile(NAN_WHEN_BRIGHT_MODEL_PATH),
    );
    expect(failing.status).toBe('READY');

    const started = await startEvaluation(clients.labeler, { modelId: failing.id, categoryId: bright.categoryId });
    const states = await followEvaluation(clients.viewer, started.id);
    const final = states[states.length - 1] as Evaluation;
    expect(final).toMatchObject({
      status: 'FAILED',
      processed: BATCH_SIZE,
      total: BATCH_SIZE + 2,
      imageAuroc: null,
      attempts: 1,
    });
    expect(final.error).toMatch(/the model produced a non-finite anomaly map value for image/);
    expect(final.finishedAt).not.toBeNull();
    expect(await probe.count('SELECT count(*) FROM evaluation_image_result WHERE evaluation_id = $1', [final.id])).toBe(
      BATCH_SIZE,
    );
    const imagesOf =
      'query($id: ID!, $misclassified: Boolean) { evaluation(id: $id) { images(misclassified: $misclassified) { totalCount edges { node { isAnomalous } } } } }';
    const results = await clients.viewer.data<{
      evaluation: { images: { totalCount: number; edges: Array<{ node: { isAnomalous: boolean | null } }> } };
    }>(imagesOf, { id: final.id });
    expect(results.evaluation.images.totalCount).toBe(BATCH_SIZE);
    expect(results.evaluation.images.edges.every((edge) => edge.node.isAnomalous === null)).toBe(true);
    expect(await clients.viewer.errorCode(imagesOf, { id: final.id, misclassified: true })).toBe(
      'EVALUATION_HAS_NO_THRESHOLD',
    );
  });

  test('a model whose file is gone from the object store ends FAILED: it could not be loaded', async () => {
    const vanishing = await registerModel(clients.admin, categoryId, 'vanishing', modelBytes);
    await probe.store.delete([`models/${vanishing.id}/model.onnx`]);
    const started = await startEvaluation(clients.labeler, {
      modelId: vanishing.id,
      categoryId,
      snapshotId: finished.snapshot?.id,
    });
    const states = await followEvaluation(clients.viewer, started.id);
    const final = states[states.length - 1] as Evaluation;
    expect(final).toMatchObject({ status: 'FAILED', processed: 0 });
    expect(final.error).toMatch(/could not be loaded: its file is missing from the object store/);
    const apply = 'mutation($id: ID!) { applyEvaluationThreshold(evaluationId: $id) { id } }';
    expect(await clients.admin.errorCode(apply, { id: final.id })).toBe('EVALUATION_NOT_FINISHED');
  });
});
