// EvaluationService and EvaluationRunner called directly (no server), with a real job queue and
// inference engine: an evaluation over a small snapshot runs to SUCCEEDED with the metrics
// recomputed from what it stored, and the model runner scores an image the same through the
// inspect path and the evaluation path.
import pg from 'pg';
import type { EvaluationEntity } from '../../src/db/entities/evaluation.entity';
import type { ImageEntity } from '../../src/db/entities/image.entity';
import type { ModelVersionEntity } from '../../src/db/entities/model-version.entity';
import { decodeMapObject } from '../../src/formats/anomaly-map-object';
import { imageScoresFromMaps } from '../../src/metrics';
import { generateSamples, readDemoModel } from '../inspection/helpers';
import {
  addImages,
  createCategory,
  createModelServices,
  registerDemoModel,
  type ModelServices,
} from '../support/model-services';
import { recomputeFromStorage, type RecomputedMetrics } from './helpers';

const BATCH_SIZE = 3;

let services: ModelServices;
let pool: pg.Pool;
let categoryId: string;
let model: ModelVersionEntity;
let images: ImageEntity[];
let imageBytes: Map<string, Buffer>;

beforeAll(async () => {
  services = await createModelServices({ EVALUATION_BATCH_SIZE: String(BATCH_SIZE) });
  pool = new pg.Pool({ connectionString: (services.dataSource.options as { url: string }).url, max: 2 });
  categoryId = await createCategory(services, 'evaluation-service');
  const samples = await generateSamples(await readDemoModel(), { trainCount: 1, testGoodCount: 3, testDefectCount: 1 });
  images = await addImages(services, categoryId, samples.files);
  imageBytes = new Map(images.map((image, index) => [image.id, samples.files[index]?.bytes as Buffer]));
  model = await registerDemoModel(services, categoryId);
  await services.jobQueue.startWorkers();
});

afterAll(async () => {
  await pool?.end();
  await services?.close();
});

/** Every state `watch` delivers, up to the final one. */
async function follow(evaluationId: string): Promise<EvaluationEntity[]> {
  const states: EvaluationEntity[] = [];
  for await (const state of await services.evaluation.evaluations.watch(evaluationId)) states.push(state);
  return states;
}

function reported(evaluation: EvaluationEntity): RecomputedMetrics['metrics'] {
  const { mapWidth, mapHeight, goodImageCount, defectiveImageCount, imageAuroc, pixelAuroc, aupro } = evaluation;
  const { imageF1Max, imageF1Threshold, pixelF1Max, pixelF1Threshold } = evaluation;
  const perDefect = evaluation.perDefect ?? [];
  return {
    ...{ mapWidth, mapHeight, goodImageCount, defectiveImageCount, imageAuroc, pixelAuroc, aupro },
    ...{ imageF1Max, imageF1Threshold, pixelF1Max, pixelF1Threshold, perDefect },
  };
}

/** Scores of the same tensor agree to float32 precision. */
function expectSameScore(actual: number | undefined, expected: number): void {
  expect(Math.abs((actual ?? Number.NaN) - expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected)));
}

test('an evaluation over a small snapshot: QUEUED, then SUCCEEDED with the metrics recomputed from the stored maps and masks', async () => {
  const testImages = images.filter((image) => image.split === 'TEST');
  const started = await services.evaluation.evaluations.start({ modelId: model.id, categoryId }, services.principal);
  expect(started).toMatchObject({
    status: 'QUEUED',
    processed: 0,
    total: testImages.length,
    modelId: model.id,
    categoryId,
  });

  const states = await follow(started.id);
  const finished = states[states.length - 1] as EvaluationEntity;
  expect(finished).toMatchObject({ status: 'SUCCEEDED', processed: testImages.length, error: null, attempts: 1 });

  const query = <T extends pg.QueryResultRow>(sql: string, parameters: unknown[] = []): Promise<pg.QueryResult<T>> =>
    pool.query<T>(sql, parameters);
  const probe = { store: services.objectStore, query };
  const recomputed = await recomputeFromStorage(probe, finished.id, finished.auproLimit);
  expect(recomputed.resultCount).toBe(testImages.length);
  expect(recomputed.scoreRules).toEqual(['max']);
  expect(recomputed.storedScoresMatchMaps).toBe(true);
  expect(reported(finished)).toEqual(recomputed.metrics);
});

test('the model runner scores an image the same through the inspect path and the evaluation path', async () => {
  const { runner } = services.inspection;
  const image = images.find((candidate) => candidate.split === 'TEST' && candidate.defectType !== null) as ImageEntity;
  const bytes = imageBytes.get(image.id) as Buffer;

  // What inspect runs: the model loaded while the bytes decode, one request batched with others.
  const prediction = await runner.predict(model, bytes);
  // What an evaluation runs: a loaded model, pre-processed images, fixed model batches.
  const loaded = await runner.load(model);
  const { tensor } = await runner.preprocess(bytes, loaded);
  const [fromEvaluationPath] = await runner.inferBatch(model, loaded, [tensor], { asOneBatch: true });
  expectSameScore(fromEvaluationPath?.score, prediction.result.score);
  expect([prediction.originalWidth, prediction.originalHeight]).toEqual([image.width, image.height]);

  // And through the services: the inspection's stored map scores like the evaluation's.
  const evaluation = (await services.db.evaluations.page({ modelId: model.id }, { first: 1 })).edges[0]
    ?.node as EvaluationEntity;
  const mapKeys = await services.db.evaluations.mapKeysByImage(evaluation.id);
  const [evaluationScore] = imageScoresFromMaps([
    decodeMapObject(await services.objectStore.get(mapKeys.get(image.id) as string)).map,
  ]);
  const inspection = await services.inspection.inspections.inspect(
    { categoryId, imageId: image.id },
    services.principal,
  );
  await services.inspection.inspections.drainMapMoves();
  const mapKey = (await services.db.inspections.findById(inspection.id))?.mapObjectKey as string;
  const [inspectionScore] = imageScoresFromMaps([decodeMapObject(await services.objectStore.get(mapKey)).map]);
  expectSameScore(inspectionScore, evaluationScore as number);
});
