// Models, inspections and evaluations built as the server builds them (src/app), on the dataset
// services of test/support/services.ts, with a real inference engine and job queue, without the
// server: for tests that call these services directly.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pino from 'pino';
import { EvaluationDomain } from '../../src/app/evaluation-domain';
import { InspectionDomain } from '../../src/app/inspection-domain';
import { Role, type Principal } from '../../src/auth/principal';
import { loadConfig } from '../../src/config/config';
import type { ImageEntity } from '../../src/db/entities/image.entity';
import type { ModelVersionEntity } from '../../src/db/entities/model-version.entity';
import { demoModelPath } from '../../src/seed/demo-seed';
import { sha256Hex } from '../../src/services/image-ingest.service';
import { createDatasetServices, type DatasetServices } from './services';

/** One inference worker with one intra-op thread: the test machines have two shared cores. */
const TEST_ENV: Record<string, string> = {
  INFERENCE_WORKERS: '1',
  INFERENCE_INTRA_OP_THREADS: '1',
  INFERENCE_THREAD_NICE: '0',
};

export interface ModelServices extends DatasetServices {
  /** The engine, model loader, model runner, models and inspections. */
  inspection: InspectionDomain;
  /** The evaluation runner (its queue defined; workers start with jobQueue.startWorkers()) and evaluations. */
  evaluation: EvaluationDomain;
  /** An ADMIN caller. */
  principal: Principal;
}

/** The services on a fresh database and bucket; `env` is read like the server's environment. */
export async function createModelServices(env: Record<string, string> = {}): Promise<ModelServices> {
  const datasets = await createDatasetServices({ ...TEST_ENV, ...env });
  const config = loadConfig({ ...TEST_ENV, ...env });
  const logger = pino({ level: 'silent' });
  const { db, objectStore, pubSub, jobQueue } = datasets;
  const inspection = await InspectionDomain.create({ config, db, objectStore, pubSub, datasets, logger });
  await inspection.openImageUrls();
  const evaluation = await EvaluationDomain.create({
    config,
    db,
    objectStore,
    pubSub,
    jobQueue,
    datasets,
    inspection,
    logger,
  });
  return {
    ...datasets,
    inspection,
    evaluation,
    principal: { apiKeyId: randomUUID(), name: 'model services test', role: Role.ADMIN },
    async close() {
      await evaluation.stop();
      await inspection.stop();
      await datasets.close();
    },
  };
}

/** A new dataset with one category; returns the category's id. */
export async function createCategory(services: ModelServices, name: string): Promise<string> {
  const dataset = await services.datasets.create(name, null, services.principal);
  return (await services.categories.create(dataset.id, name, services.principal)).id;
}

/** The bundled demo model registered in the category (READY) and activated. */
export async function registerDemoModel(services: ModelServices, categoryId: string): Promise<ModelVersionEntity> {
  const bytes = await readFile(demoModelPath());
  const registered = await services.inspection.models.registerFile({
    categoryId,
    name: 'demo',
    bytes,
    createdBy: null,
  });
  if (registered.status !== 'READY')
    throw new Error(`the demo model is ${registered.status}: ${registered.failureReason}`);
  return services.inspection.models.activate(registered.id);
}

export interface SampleImage {
  bytes: Buffer;
  mask: Buffer | null;
  split: 'TRAIN' | 'TEST';
  defectType: string | null;
}

/** Adds images (and masks) to the category as an import does; returns them in the order given. */
export async function addImages(
  services: ModelServices,
  categoryId: string,
  samples: readonly SampleImage[],
): Promise<ImageEntity[]> {
  const images: ImageEntity[] = [];
  for (const [index, sample] of samples.entries()) {
    const outcome = await services.ingest.ingest({
      categoryId,
      split: sample.split as ImageEntity['split'],
      defectType: sample.defectType,
      bytes: sample.bytes,
      sha256: sha256Hex(sample.bytes),
      readMask: sample.mask ? async () => sample.mask as Buffer : null,
      originalFilename: `sample-${index}.png`,
      uploadedBy: services.principal.apiKeyId,
      importJobId: null,
    });
    if (outcome.kind !== 'inserted') throw new Error(`sample ${index} was not added: ${JSON.stringify(outcome)}`);
    images.push(outcome.image);
  }
  return images;
}
