// What the evaluation tests share: the model they evaluate (the bundled demo model when it is
// there, else the contract-conformant tiny test model), a generated category imported over
// HTTP, following an evaluation over graphql-ws, and the metrics recomputed independently
// from what the server stored (rows in its database, map and mask objects in its bucket).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { describeOnnxFile } from '../../src/inference';
import { evaluatePixelMetrics, imageAuroc, imageF1Max, imageScoresFromMaps } from '../../src/metrics';
import { demoGeneratorSettings, demoModelPath } from '../../src/seed/demo-seed';
import { decodeMapObject } from '../../src/formats/anomaly-map-object';
import { writeMvtecCategory, type GeneratedCategorySummary } from '../../src/synthetic/mvtec-generator';
import { SubscriptionRecorder, type GraphQLTestClient } from '../support/graphql-client';
import type { StorageProbe } from '../inspection/helpers';

export const REPOSITORY_ROOT = path.resolve(__dirname, '..', '..');
export const TINY_MODEL_PATH = path.join(REPOSITORY_ROOT, 'test', 'fixtures', 'inference', 'tiny.onnx');
export const NAN_WHEN_BRIGHT_MODEL_PATH = path.join(
  REPOSITORY_ROOT,
  'test',
  'fixtures',
  'evaluation',
  'nan-when-bright.onnx',
);

/** EVALUATION_TEST_MODEL, else the demo model once the trainer has produced it, else tiny.onnx. */
export function evaluationModelPath(): string {
  if (process.env.EVALUATION_TEST_MODEL) return process.env.EVALUATION_TEST_MODEL;
  return existsSync(demoModelPath()) ? demoModelPath() : TINY_MODEL_PATH;
}

/**
 * Writes a small MVTec-layout category under `root` in the style the model was trained on
 * (the demo model's metadata names its generator settings); small images for the tiny model.
 */
export async function generateCategory(
  root: string,
  modelBytes: Buffer,
  counts: { testGoodCount: number; testDefectCount: number },
): Promise<GeneratedCategorySummary> {
  const settings = demoGeneratorSettings(describeOnnxFile(modelBytes).metadata);
  const isDemo = evaluationModelPath() === demoModelPath();
  return writeMvtecCategory({ outDir: root, ...settings, size: isDemo ? settings.size : 64, trainCount: 2, ...counts });
}

const IMPORT = 'mutation($input: ImportMvtecDatasetInput!) { importMvtecDataset(input: $input) { id } }';
const IMPORT_PROGRESS =
  'subscription($id: ID!) { importProgress(id: $id) { id status imported errorCount errors { path code message } } }';

/** Creates a dataset, imports the generated category folder into it over HTTP, and waits for the import. */
export async function importCategory(
  client: GraphQLTestClient,
  datasetName: string,
  generated: GeneratedCategorySummary,
): Promise<string> {
  const dataset = await client.data<{ createDataset: { id: string } }>(
    'mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }',
    {
      input: { name: datasetName, description: 'evaluation tests' },
    },
  );
  const datasetId = dataset.createDataset.id;
  const started = await client.data<{ importMvtecDataset: { id: string } }>(IMPORT, {
    input: { datasetId, source: { localPath: path.dirname(generated.categoryDir) }, categories: [generated.category] },
  });
  type ImportState = { importProgress: { status: string; imported: number; errorCount: number; errors: unknown[] } };
  const websocket = client.websocket();
  const recorder = new SubscriptionRecorder<ImportState>(websocket, IMPORT_PROGRESS, {
    id: started.importMvtecDataset.id,
  });
  try {
    const results = await recorder.waitFor(
      (all) => all.some((result) => ['SUCCEEDED', 'FAILED'].includes(result.data?.importProgress.status ?? '')),
      120_000,
    );
    const last = results[results.length - 1]?.data?.importProgress;
    if (last?.status !== 'SUCCEEDED' || last.errorCount !== 0 || last.imported !== generated.imageCount)
      throw new Error(`import did not succeed: ${JSON.stringify(last)}`);
  } finally {
    recorder.dispose();
    await websocket.dispose();
  }
  const categories = await client.data<{ dataset: { categories: Array<{ id: string; name: string }> } }>(
    'query($id: ID!) { dataset(id: $id) { categories { id name } } }',
    { id: datasetId },
  );
  const category = categories.dataset.categories.find((entry) => entry.name === generated.category);
  if (!category) throw new Error('the imported category is missing');
  return category.id;
}

export const EVALUATION_FIELDS = `id status processed total auproLimit imageScoreRule mapWidth mapHeight goodImageCount defectiveImageCount
  imageAuroc pixelAuroc aupro imageF1Max imageF1Threshold pixelF1Max pixelF1Threshold
  perDefect { defectType imageCount imageAuroc pixelAuroc aupro } rocCurve { x y } proCurve { x y }
  error attempts createdAt updatedAt startedAt finishedAt model { id } category { id } snapshot { id }`;

export interface DefectRow {
  defectType: string;
  imageCount: number;
  imageAuroc: number | null;
  pixelAuroc: number | null;
  aupro: number | null;
}

export interface Evaluation {
  id: string;
  status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  processed: number;
  total: number;
  auproLimit: number;
  imageScoreRule: string;
  mapWidth: number | null;
  mapHeight: number | null;
  goodImageCount: number | null;
  defectiveImageCount: number | null;
  imageAuroc: number | null;
  pixelAuroc: number | null;
  aupro: number | null;
  imageF1Max: number | null;
  imageF1Threshold: number | null;
  pixelF1Max: number | null;
  pixelF1Threshold: number | null;
  perDefect: DefectRow[];
  rocCurve: Array<{ x: number; y: number }>;
  proCurve: Array<{ x: number; y: number }>;
  error: string | null;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  model: { id: string };
  category: { id: string };
  snapshot: { id: string } | null;
}

export const START_EVALUATION = `mutation($input: StartEvaluationInput!) { startEvaluation(input: $input) { ${EVALUATION_FIELDS} } }`;
export const EVALUATION_PROGRESS = `subscription($id: ID!) { evaluationProgress(id: $id) { ${EVALUATION_FIELDS} } }`;

export async function startEvaluation(client: GraphQLTestClient, input: Record<string, unknown>): Promise<Evaluation> {
  return (await client.data<{ startEvaluation: Evaluation }>(START_EVALUATION, { input })).startEvaluation;
}

export const FINAL_STATUSES = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** Every state evaluationProgress delivers, from the first (the current one) to the final one. */
export async function followEvaluation(
  client: GraphQLTestClient,
  evaluationId: string,
  timeoutMs = 240_000,
): Promise<Evaluation[]> {
  const websocket = client.websocket();
  const recorder = new SubscriptionRecorder<{ evaluationProgress: Evaluation }>(websocket, EVALUATION_PROGRESS, {
    id: evaluationId,
  });
  try {
    await recorder.waitFor(
      (all) => all.some((result) => FINAL_STATUSES.has(result.data?.evaluationProgress.status ?? '')),
      timeoutMs,
    );
    await recorder.waitForCompletion();
    if (recorder.results.some((result) => result.errors))
      throw new Error(`evaluationProgress errors: ${JSON.stringify(recorder.results)}`);
    return recorder.results.map((result) => (result.data as { evaluationProgress: Evaluation }).evaluationProgress);
  } finally {
    recorder.dispose();
    await websocket.dispose();
  }
}

function resizeNearest(
  mask: Uint8Array,
  srcWidth: number,
  srcHeight: number,
  width: number,
  height: number,
): Uint8Array {
  // Written again here, not imported, so the check does not lean on the code it checks.
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const sx = Math.min(srcWidth - 1, Math.floor(((x + 0.5) * srcWidth) / width));
      const sy = Math.min(srcHeight - 1, Math.floor(((y + 0.5) * srcHeight) / height));
      out[y * width + x] = mask[sy * srcWidth + sx] ? 1 : 0;
    }
  }
  return out;
}

export interface RecomputedMetrics {
  resultCount: number;
  scoreRules: string[];
  /** Scores stored in the rows equal the maxima of the stored maps. */
  storedScoresMatchMaps: boolean;
  metrics: Omit<
    Evaluation,
    | 'id'
    | 'status'
    | 'processed'
    | 'total'
    | 'auproLimit'
    | 'imageScoreRule'
    | 'rocCurve'
    | 'proCurve'
    | 'error'
    | 'attempts'
    | 'createdAt'
    | 'updatedAt'
    | 'startedAt'
    | 'finishedAt'
    | 'model'
    | 'category'
    | 'snapshot'
  >;
}

/**
 * The metrics from the server's stored per-image results alone: each row's map object read
 * from the bucket and decoded, each image's mask read from the bucket and resized to the map
 * (nearest, pixel centres), then src/metrics called directly (imageAuroc, imageF1Max,
 * evaluatePixelMetrics), also per defect type against the good images.
 */
export async function recomputeFromStorage(
  probe: Pick<StorageProbe, 'query' | 'store'>,
  evaluationId: string,
  auproLimit: number,
): Promise<RecomputedMetrics> {
  const { rows } = await probe.query<{
    image_id: string;
    score: number;
    score_rule: string;
    map_object_key: string;
    defect_type: string | null;
    mask_object_key: string | null;
  }>(
    `SELECT result.image_id, result.score, result.score_rule, result.map_object_key, image.defect_type, image.mask_object_key
       FROM evaluation_image_result result JOIN image ON image.id = result.image_id
      WHERE result.evaluation_id = $1 ORDER BY image.id`,
    [evaluationId],
  );
  const samples = await Promise.all(
    rows.map(async (row) => {
      const stored = decodeMapObject(await probe.store.get(row.map_object_key));
      let mask: Uint8Array = new Uint8Array(stored.width * stored.height);
      let label = 0;
      if (row.mask_object_key) {
        const { data, info } = await sharp(await probe.store.get(row.mask_object_key))
          .extractChannel(0)
          .raw()
          .toBuffer({ resolveWithObject: true });
        label = data.some((value) => value !== 0) ? 1 : 0;
        mask = resizeNearest(data, info.width, info.height, stored.width, stored.height);
      }
      return { row, stored, mask, label };
    }),
  );
  const width = samples[0]?.stored.width ?? 0;
  const height = samples[0]?.stored.height ?? 0;
  const maps = samples.map((sample) => sample.stored.map);
  const scores = imageScoresFromMaps(maps);
  const labels = Uint8Array.from(samples, (sample) => sample.label);
  const pixels = evaluatePixelMetrics(
    maps,
    samples.map((sample) => sample.mask),
    width,
    height,
    { proLimit: auproLimit },
  );
  const f1 = imageF1Max(scores, labels);
  const defectTypes = [
    ...new Set(samples.flatMap((sample) => (sample.row.defect_type ? [sample.row.defect_type] : []))),
  ].sort();
  const perDefect = defectTypes.map((defectType): DefectRow => {
    const subset = samples.filter((sample) => sample.row.defect_type === null || sample.row.defect_type === defectType);
    const subsetMaps = subset.map((sample) => sample.stored.map);
    const subsetPixels = evaluatePixelMetrics(
      subsetMaps,
      subset.map((sample) => sample.mask),
      width,
      height,
      { proLimit: auproLimit },
    );
    return {
      defectType,
      imageCount: subset.filter((sample) => sample.row.defect_type === defectType).length,
      imageAuroc: imageAuroc(
        imageScoresFromMaps(subsetMaps),
        Uint8Array.from(subset, (sample) => sample.label),
      ),
      pixelAuroc: subsetPixels.auroc,
      aupro: subsetPixels.aupro,
    };
  });
  return {
    resultCount: rows.length,
    scoreRules: [...new Set(rows.map((row) => row.score_rule))],
    storedScoresMatchMaps: rows.every((row, index) => Number(row.score) === scores[index]),
    metrics: {
      mapWidth: width,
      mapHeight: height,
      goodImageCount: samples.filter((sample) => sample.row.defect_type === null).length,
      defectiveImageCount: samples.filter((sample) => sample.row.defect_type !== null).length,
      imageAuroc: imageAuroc(scores, labels),
      pixelAuroc: pixels.auroc,
      aupro: pixels.aupro,
      imageF1Max: f1.f1,
      imageF1Threshold: f1.threshold,
      pixelF1Max: pixels.f1Max.f1,
      pixelF1Threshold: pixels.f1Max.threshold,
      perDefect,
    },
  };
}

export function reportedMetrics(evaluation: Evaluation): RecomputedMetrics['metrics'] {
  const {
    mapWidth,
    mapHeight,
    goodImageCount,
    defectiveImageCount,
    imageAuroc,
    pixelAuroc,
    aupro,
    imageF1Max,
    imageF1Threshold,
    pixelF1Max,
    pixelF1Threshold,
    perDefect,
  } = evaluation;
  return {
    mapWidth,
    mapHeight,
    goodImageCount,
    defectiveImageCount,
    imageAuroc,
    pixelAuroc,
    aupro,
    imageF1Max,
    imageF1Threshold,
    pixelF1Max,
    pixelF1Threshold,
    perDefect,
  };
}

export async function readModel(file: string): Promise<Buffer> {
  return readFile(file);
}
