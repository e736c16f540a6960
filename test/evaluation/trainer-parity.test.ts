// Service half of the trainer-vs-service parity check (GitHub issue 13, part 4; the trainer half
// is training/tests/test_service_parity.py). One committed golden file joins the two:
// test/fixtures/evaluation/trainer-parity.json holds the generator's arguments, the digest of
// the category they write, the exported model's checksums and what `training.evaluate` measured
// on that category with that model. Here the same generator writes the same category (same
// digest), the service imports it, registers the same ONNX file and evaluates it with its
// DEFAULT settings: image AUROC, pixel AUROC and AUPRO must equal the trainer's to 4 decimals.
// Then the same evaluation with the opt-in INFERENCE_RESIZE=sharp-linear, to show what the
// resize alone does to the scores.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeMvtecCategory, type TextureKind } from '../../src/synthetic/mvtec-generator';
import { createClients, registerModel, StorageProbe, type Clients, type ModelVersion } from '../inspection/helpers';
import { uniqueName } from '../support/resources';
import { startTestServer, type TestServer } from '../support/test-server';
import { followEvaluation, importCategory, REPOSITORY_ROOT, startEvaluation, type Evaluation } from './helpers';

interface TrainerMetrics {
  image_auroc: number;
  pixel_auroc: number;
  aupro: number;
  image_auroc_per_defect: Record<string, number>;
  test_images: { good: number; defective: number };
  /** By path in the category, e.g. `test/hole/000.png`. */
  scores: Record<string, number>;
}

interface Golden {
  generator: {
    category: string;
    texture: TextureKind;
    seed: number;
    size: number;
    train: number;
    testGood: number;
    testDefect: number;
  };
  category_sha256: string;
  category_files: number;
  model: { onnx: string; checkpoint: string; onnx_sha256: string; checkpoint_sha256: string };
  decimals: number;
  score_tolerance: number;
  trainer: TrainerMetrics;
}

const GOLDEN_PATH = path.join(REPOSITORY_ROOT, 'test', 'fixtures', 'evaluation', 'trainer-parity.json');

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** As the trainer half: sha256 over `<relative path>\t<sha256 of the file>\n` for every file, sorted by path. */
async function categoryDigest(directory: string): Promise<{ digest: string; files: number }> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  const lines = await Promise.all(
    entries
      .filter((entry) => entry.isFile())
      .map(async (entry) => {
        const file = path.join(entry.parentPath, entry.name);
        const relative = path.relative(directory, file).split(path.sep).join('/');
        return `${relative}\t${sha256(await readFile(file))}\n`;
      }),
  );
  lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { digest: sha256(lines.join('')), files: lines.length };
}

interface ServiceRun {
  evaluation: Evaluation;
  /** The score the service stored for each test image, by its path in the category. */
  scores: Record<string, number>;
}

let golden: Golden;
let root: string;
let categoryDir: string;
let modelBytes: Buffer;
let server: TestServer | undefined;
let clients: Clients;
let categoryId: string;
let model: ModelVersion;

async function evaluateOnce(): Promise<ServiceRun> {
  const started = await startEvaluation(clients.labeler, { modelId: model.id, categoryId });
  const states = await followEvaluation(clients.viewer, started.id, 120_000);
  const evaluation = states[states.length - 1] as Evaluation;
  expect(evaluation).toMatchObject({ status: 'SUCCEEDED', error: null, auproLimit: 0.3, imageScoreRule: 'max' });
  const probe = new StorageProbe(server as TestServer);
  try {
    const { rows } = await probe.query<{ original_filename: string; score: number }>(
      `SELECT image.original_filename, result.score
         FROM evaluation_image_result result JOIN image ON image.id = result.image_id
        WHERE result.evaluation_id = $1`,
      [evaluation.id],
    );
    const scores: Record<string, number> = {};
    for (const row of rows) scores[categoryPath(row.original_filename)] = Number(row.score);
    return { evaluation, scores };
  } finally {
    await probe.close();
  }
}

/** The import's `originalFilename` as a path inside the category (`test/<label>/<file>`). */
function categoryPath(originalFilename: string): string {
  const parts = originalFilename.split('/');
  const test = parts.lastIndexOf('test');
  return parts.slice(test).join('/');
}

/** Pairs (good, defective) that the scores order differently from the trainer's. */
function swappedPairs(scores: Record<string, number>): string[] {
  const expected = golden.trainer.scores;
  const names = Object.keys(expected);
  const good = names.filter((name) => name.startsWith('test/good/'));
  const defective = names.filter((name) => !name.startsWith('test/good/'));
  const order = (a: number, b: number) => Math.sign(a - b);
  return good.flatMap((g) =>
    defective
      .filter((d) => order(expected[g] as number, expected[d] as number) !== order(scores[g] ?? NaN, scores[d] ?? NaN))
      .map((d) => `${g} / ${d}`),
  );
}

function maxScoreDifference(scores: Record<string, number>): number {
  return Math.max(
    ...Object.entries(golden.trainer.scores).map(([name, value]) => Math.abs((scores[name] ?? NaN) - value)),
  );
}

beforeAll(async () => {
  golden = JSON.parse(await readFile(GOLDEN_PATH, 'utf8')) as Golden;
  root = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('trainer-parity-'));
  await mkdir(root, { recursive: true });
  const { generator } = golden;
  const generated = await writeMvtecCategory({
    outDir: path.join(root, 'mvtec'),
    category: generator.category,
    texture: generator.texture,
    seed: generator.seed,
    size: generator.size,
    trainCount: generator.train,
    testGoodCount: generator.testGood,
    testDefectCount: generator.testDefect,
  });
  categoryDir = generated.categoryDir;
  modelBytes = await readFile(path.join(REPOSITORY_ROOT, golden.model.onnx));
  // Nothing but the variables named here: the service's defaults for everything else.
  server = await startTestServer({ env: { IMPORT_ROOTS: root } });
  clients = await createClients(server);
  categoryId = await importCategory(clients.labeler, 'trainer parity', generated);
  model = await registerModel(clients.admin, categoryId, 'demo (trainer parity)', modelBytes);
  expect(model.status).toBe('READY');
});

afterAll(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

test('the category and the model are the ones the trainer half evaluated', async () => {
  expect(await categoryDigest(categoryDir)).toEqual({ digest: golden.category_sha256, files: golden.category_files });
  expect(sha256(modelBytes)).toBe(golden.model.onnx_sha256);
  expect(server?.env.INFERENCE_RESIZE).toBeUndefined();
});

let defaults: ServiceRun;

test('with the default settings the service reports the trainer’s metrics to 4 decimals, every score within 1e-4', async () => {
  defaults = await evaluateOnce();
  const { evaluation } = defaults;
  const { trainer, decimals } = golden;
  expect([evaluation.goodImageCount, evaluation.defectiveImageCount]).toEqual([
    trainer.test_images.good,
    trainer.test_images.defective,
  ]);
  expect(evaluation.imageAuroc).toBeCloseTo(trainer.image_auroc, decimals);
  expect(evaluation.pixelAuroc).toBeCloseTo(trainer.pixel_auroc, decimals);
  expect(evaluation.aupro).toBeCloseTo(trainer.aupro, decimals);
  expect(evaluation.perDefect.map((row) => row.defectType)).toEqual(Object.keys(trainer.image_auroc_per_defect).sort());
  for (const row of evaluation.perDefect)
    expect([row.defectType, row.imageAuroc]).toEqual([
      row.defectType,
      expect.closeTo(trainer.image_auroc_per_defect[row.defectType] as number, decimals),
    ]);
  expect(Object.keys(defaults.scores).sort()).toEqual(Object.keys(trainer.scores).sort());
  expect(maxScoreDifference(defaults.scores)).toBeLessThanOrEqual(golden.score_tolerance);
  expect(swappedPairs(defaults.scores)).toEqual([]);
});

test('with the opt-in INFERENCE_RESIZE=sharp-linear the scores move (and the metrics may)', async () => {
  // The same database and bucket, restarted with the other resize.
  const first = server as TestServer;
  await first.stop();
  server = undefined;
  server = await startTestServer({
    env: { IMPORT_ROOTS: root, INFERENCE_RESIZE: 'sharp-linear' },
    databaseUrl: first.databaseUrl,
    bucket: first.bucket,
    adminKey: first.adminKey,
  });
  clients = await createClients(server);
  const sharpLinear = await evaluateOnce();
  // Measured on this category: scores moved by up to 0.043 (the frameworks agree to 2e-6), 8
  // good/defective pairs swapped order (in both directions: image AUROC happened to stay 0.73),
  // pixel AUROC 0.8703 and AUPRO 0.5283 against the trainer's 0.8725 and 0.5220. Asserted with
  // that margin: the scores move, some pair swaps, and the metrics are not all the trainer's.
  const { evaluation } = sharpLinear;
  const { trainer } = golden;
  expect(maxScoreDifference(sharpLinear.scores)).toBeGreaterThan(100 * golden.score_tolerance);
  expect(swappedPairs(sharpLinear.scores).length).toBeGreaterThan(0);
  const sameToFourDecimals = (actual: number | null, expected: number) =>
    actual !== null && Math.abs(actual - expected) < 0.5 * 10 ** -golden.decimals;
  expect(
    sameToFourDecimals(evaluation.imageAuroc, trainer.image_auroc) &&
      sameToFourDecimals(evaluation.pixelAuroc, trainer.pixel_auroc) &&
      sameToFourDecimals(evaluation.aupro, trainer.aupro),
  ).toBe(false);
});
