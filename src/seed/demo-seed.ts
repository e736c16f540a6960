/**
 * The demo a newcomer gets on the first embedded start: a generated MVTec-style category in a
 * "Demo" dataset, and the bundled demo model registered and active for it, so `inspect` works
 * at once. Idempotent: every step finds what an earlier, interrupted run created, and a marker
 * row makes later starts skip it (also after the demo was deleted on purpose).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { ImageSplit } from '../db/entities/image.entity';
import { ModelStatus } from '../db/entities/model-version.entity';
import type { Database } from '../db/repositories';
import { describeOnnxFile, type ModelMetadata } from '../inference';
import type { CategoryService } from '../services/category.service';
import { sha256Hex, type ImageIngestService } from '../services/image-ingest.service';
import type { ModelService } from '../services/model.service';
import {
  DEFAULT_GENERATOR_OPTIONS,
  TEXTURE_KINDS,
  writeMvtecCategory,
  type TextureKind,
  type WriteMvtecCategoryOptions,
} from '../synthetic/mvtec-generator';

export const DEMO_MARKER = 'demo';
export const DEMO_DATASET_NAME = 'Demo';
export const DEMO_MODEL_NAME = 'demo';
/** Few images: enough to try inspect and an evaluation, quick to generate on every first start. */
const DEMO_COUNTS = { trainCount: 8, testGoodCount: 6, testDefectCount: 2 } as const;
/** The generator seed when the model's metadata does not name the one it was trained on. */
const FALLBACK_GENERATOR_SEED = 7;

function projectRoot(from: string): string {
  let directory = from;
  while (!existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`no package.json above ${from}`);
    directory = parent;
  }
  return directory;
}

/** The bundled demo model: models/demo/model.onnx of the project. */
export function demoModelPath(): string {
  return path.join(projectRoot(__dirname), 'models', 'demo', 'model.onnx');
}

export interface DemoSeedDependencies {
  db: Database;
  datasets: { categories: CategoryService; ingest: ImageIngestService };
  models: ModelService;
  logger: Logger;
  /** Defaults to demoModelPath(). */
  modelPath?: string;
}

export interface DemoSeedResult {
  datasetId: string;
  categoryId: string;
  modelId: string;
  images: number;
}

type GeneratorSettings = Pick<WriteMvtecCategoryOptions, 'category' | 'seed' | 'size' | 'texture'>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The generator settings the model was trained with, so that the demo images look like its
 * training images: `training_data.generator` ({category, seed, size, texture}) when the metadata
 * has it, else what `training_data.source` names ("synthetic generate-mvtec category=weave
 * seed=2024", as training.demo writes it), else the model's category and the generator defaults.
 */
export function demoGeneratorSettings(metadata: ModelMetadata): GeneratorSettings {
  const trainingData = isRecord(metadata.trainingData) ? metadata.trainingData : {};
  const generator = isRecord(trainingData.generator) ? trainingData.generator : {};
  const source = typeof trainingData.source === 'string' ? trainingData.source : '';
  const fromSource = (name: string): string | undefined =>
    new RegExp(`(?:^|\\s)${name}=([A-Za-z0-9_-]+)`).exec(source)?.[1];
  const integer = (value: unknown): number | undefined => {
    const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
    return typeof number === 'number' && Number.isInteger(number) && number >= 0 ? number : undefined;
  };
  const textureName = typeof generator.texture === 'string' ? generator.texture : fromSource('texture');
  const texture =
    textureName !== undefined && (TEXTURE_KINDS as readonly string[]).includes(textureName)
      ? (textureName as TextureKind)
      : undefined;
  const category =
    typeof generator.category === 'string' ? generator.category : (fromSource('category') ?? metadata.category);
  return {
    category,
    seed: integer(generator.seed) ?? integer(fromSource('seed')) ?? FALLBACK_GENERATOR_SEED,
    size: integer(generator.size) ?? integer(fromSource('size')) ?? DEFAULT_GENERATOR_OPTIONS.size,
    texture,
  };
}

/** Seeds the demo unless a marker says it was seeded before; null when skipped. */
export async function seedDemo(deps: DemoSeedDependencies): Promise<DemoSeedResult | null> {
  const { db, logger } = deps;
  const modelPath = deps.modelPath ?? demoModelPath();
  // Replicas starting together on a fresh database seed once.
  return db.seedMarkers.whileLocked(DEMO_MARKER, async () => {
    if (await db.seedMarkers.exists(DEMO_MARKER)) return null;
    if (!existsSync(modelPath)) {
      logger.warn(
        { modelPath },
        'the bundled demo model is missing; not seeding the demo (npm run demo:model builds it)',
      );
      return null;
    }
    const started = Date.now();
    const result = await seed(deps, await readFile(modelPath));
    await db.seedMarkers.insert(DEMO_MARKER, {
      datasetId: result.datasetId,
      categoryId: result.categoryId,
      modelId: result.modelId,
    });
    logger.info({ ...result, ms: Date.now() - started }, 'seeded the demo dataset and model');
    return result;
  });
}

async function seed(deps: DemoSeedDependencies, modelBytes: Buffer): Promise<DemoSeedResult> {
  const { db, datasets, models } = deps;
  const { metadata } = describeOnnxFile(modelBytes);
  const settings = demoGeneratorSettings(metadata);

  const description = `Generated ${settings.category} images for the bundled demo model`;
  const dataset =
    (await db.datasets.findLiveByName(DEMO_DATASET_NAME)) ??
    (await db.datasets.insert({ name: DEMO_DATASET_NAME, description, createdBy: null }));
  const category = await datasets.categories.findOrCreate(dataset.id, settings.category, null);
  if (!category) throw new Error('the demo dataset was deleted while it was being seeded');

  const directory = await mkdtemp(path.join(os.tmpdir(), 'inspection-demo-'));
  let imported = 0;
  try {
    const generated = await writeMvtecCategory({ outDir: directory, ...settings, ...DEMO_COUNTS });
    for (const file of generated.files) {
      const bytes = await readFile(path.join(generated.categoryDir, file.imagePath));
      const { maskPath } = file;
      // Images already there (from an interrupted earlier run) are skipped, not counted.
      const outcome = await datasets.ingest.ingest({
        categoryId: category.id,
        split: file.split === 'train' ? ImageSplit.TRAIN : ImageSplit.TEST,
        defectType: file.label === 'good' ? null : file.label,
        bytes,
        sha256: sha256Hex(bytes),
        readMask: maskPath !== null ? () => readFile(path.join(generated.categoryDir, maskPath)) : null,
        originalFilename: `${settings.category}/${file.imagePath}`,
        uploadedBy: null,
        importJobId: null,
      });
      if (outcome.kind === 'invalid')
        throw new Error(`the generated ${outcome.part} of ${file.imagePath} was refused: ${outcome.message}`);
      if (outcome.kind === 'inserted') imported += 1;
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }

  const existing = await db.models.findLatestReady(category.id, DEMO_MODEL_NAME);
  const model =
    existing ??
    (await models.registerFile({ categoryId: category.id, name: DEMO_MODEL_NAME, bytes: modelBytes, createdBy: null }));
  if (model.status !== ModelStatus.READY)
    throw new Error(`the bundled demo model did not validate: ${model.failureReason ?? model.status}`);
  await models.activate(model.id);
  return { datasetId: dataset.id, categoryId: category.id, modelId: model.id, images: imported };
}
