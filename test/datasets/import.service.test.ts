// The import service on its own (no server): real database, bucket and job queue, jobs
// delivered by calling the queue's handler as a worker would, and their outcome read back from
// the rows and objects they left.
import { randomUUID } from 'node:crypto';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Role, type Principal } from '../../src/auth/principal';
import type { ImageEntity } from '../../src/db/entities/image.entity';
import { ImportJobStatus, type ImportJobEntity } from '../../src/db/entities/import-job.entity';
import { JobInterruptedError, type JobContext } from '../../src/jobs/job-queue';
import { writeMvtecCategory, type GeneratedCategorySummary } from '../../src/synthetic/mvtec-generator';
import { uniqueName } from '../support/resources';
import { createDatasetServices, type DatasetServices } from '../support/services';
import { pngImage, pngMask, sha256 } from './helpers';

const principal: Principal = { apiKeyId: randomUUID(), name: 'import tests', role: Role.LABELER };

let root: string;
let source: string;
let generated: GeneratedCategorySummary;
let services: DatasetServices;

beforeAll(async () => {
  root = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('import-service-'));
  source = path.join(root, 'mvtec');
  const counts = { trainCount: 5, testGoodCount: 2, testDefectCount: 2 };
  generated = await writeMvtecCategory({ outDir: source, category: 'weave', seed: 3, size: 48, ...counts });
  services = await createDatasetServices({ IMPORT_ROOTS: root });
});

afterAll(async () => {
  await services?.close();
  await rm(root, { recursive: true, force: true });
});

async function createDataset(): Promise<string> {
  return (await services.datasets.create(uniqueName('dataset '), null, principal)).id;
}

async function startImport(datasetId: string, localPath = source): Promise<string> {
  return (await services.imports.start({ datasetId, source: { localPath } }, principal)).id;
}

/** One delivery of the job, as a worker makes it; the row afterwards. */
async function deliver(importJobId: string, context: Partial<JobContext> = {}): Promise<ImportJobEntity> {
  const delivery: JobContext = {
    signal: new AbortController().signal,
    retryCount: 0,
    isLastAttempt: false,
    ...context,
  };
  await services.imports.queueDefinition().handle({ importJobId }, delivery);
  return services.db.importJobs.get(importJobId);
}

async function imagesOf(datasetId: string): Promise<ImageEntity[]> {
  const categories = await services.categories.listByDatasets([datasetId]);
  const page = await services.images.list({ categoryId: categories[0]?.id ?? '' }, { first: 100 });
  return page.edges.map((edge) => edge.node);
}

async function storedKeys(): Promise<string[]> {
  const keys: string[] = [];
  for (const prefix of ['images/', 'masks/'])
    for await (const object of services.objectStore.list(prefix)) keys.push(object.key);
  return keys.sort();
}

test('an import of a generated category stores every image and its mask, and counts them', async () => {
  const datasetId = await createDataset();
  const keysBefore = await storedKeys();
  const job = await deliver(await startImport(datasetId));
  const count = generated.imageCount;
  expect(job).toMatchObject({
    status: ImportJobStatus.SUCCEEDED,
    total: count,
    processed: count,
    imported: count,
    duplicates: 0,
  });
  expect(job).toMatchObject({ errorCount: 0, errors: [], attempts: 1 });

  const images = await imagesOf(datasetId);
  expect(images.map((image) => image.originalFilename).sort()).toEqual(
    generated.files.map((file) => file.imagePath).sort(),
  );
  const files = new Map(generated.files.map((file) => [file.imagePath, file]));
  for (const image of images) {
    const file = files.get(image.originalFilename);
    if (!file) throw new Error(`unexpected image ${image.originalFilename}`);
    expect(image.importJobId).toBe(job.id);
    const sourceFile = async (relative: string): Promise<string> =>
      sha256(await readFile(path.join(generated.categoryDir, relative)));
    expect(sha256(await services.objectStore.get(image.objectKey))).toBe(await sourceFile(file.imagePath));
    if (file.maskPath) {
      expect(sha256(await services.objectStore.get(image.maskObjectKey ?? ''))).toBe(await sourceFile(file.maskPath));
    } else {
      expect(image.maskObjectKey).toBeNull();
    }
  }
  const added = (await storedKeys()).filter((key) => !keysBefore.includes(key));
  expect(added).toHaveLength(generated.imageCount + generated.maskCount);
});

test('the job run again counts its own images as imported, another job counts them as duplicates; nothing is stored twice', async () => {
  const datasetId = await createDataset();
  const first = await deliver(await startImport(datasetId));
  const images = await imagesOf(datasetId);
  const keys = await storedKeys();

  // As after a crash: the same job delivered again recounts from zero.
  await services.db.importJobs.setStatus(first.id, ImportJobStatus.QUEUED);
  const rerun = await deliver(first.id);
  expect(rerun).toMatchObject({
    status: ImportJobStatus.SUCCEEDED,
    imported: generated.imageCount,
    duplicates: 0,
    attempts: 2,
  });

  const second = await deliver(await startImport(datasetId));
  expect(second).toMatchObject({ status: ImportJobStatus.SUCCEEDED, imported: 0, duplicates: generated.imageCount });

  expect(await imagesOf(datasetId)).toEqual(images);
  expect(await storedKeys()).toEqual(keys);
});

test('a corrupt image and a mask of the wrong size end in the problems, with their codes; the rest is imported', async () => {
  const broken = path.join(root, uniqueName('broken-'));
  await cp(generated.categoryDir, path.join(broken, 'weave'), { recursive: true });
  const defective = generated.files.find((file) => file.maskPath !== null);
  if (!defective?.maskPath) throw new Error('the generator made no defective image');
  await writeFile(path.join(broken, 'weave', 'train', 'good', 'corrupt.png'), 'not really a png');
  await writeFile(path.join(broken, 'weave', defective.maskPath), await pngMask(8, 8));

  const datasetId = await createDataset();
  const keysBefore = await storedKeys();
  const job = await deliver(await startImport(datasetId, broken));
  expect(job.status).toBe(ImportJobStatus.SUCCEEDED);
  expect(job.errors.map((problem) => [problem.path, problem.code]).sort()).toEqual(
    [
      ['weave/train/good/corrupt.png', 'INVALID_IMAGE'],
      [`weave/${defective.maskPath}`, 'MASK_MISMATCH'],
    ].sort(),
  );
  const count = generated.imageCount;
  expect(job).toMatchObject({
    total: count + 1,
    processed: count + 1,
    imported: count - 1,
    duplicates: 0,
    errorCount: 2,
  });
  expect((await imagesOf(datasetId)).map((image) => image.originalFilename)).not.toContain(defective.imagePath);
  const added = (await storedKeys()).filter((key) => !keysBefore.includes(key));
  expect(added).toHaveLength(generated.imageCount - 1 + generated.maskCount - 1);
});

test('the same bytes under another label are a duplicate, reported with the label they already have', async () => {
  const datasetId = await createDataset();
  await deliver(await startImport(datasetId));
  const train = generated.files.find((file) => file.split === 'train');
  if (!train) throw new Error('the generator made no train image');
  const relabelled = path.join(root, uniqueName('relabelled-'));
  await cp(
    path.join(generated.categoryDir, train.imagePath),
    path.join(relabelled, 'weave', 'test', 'good', 'copy.png'),
  );
  const existing = (await imagesOf(datasetId)).find((image) => image.originalFilename === train.imagePath);

  const job = await deliver(await startImport(datasetId, relabelled));
  expect(job).toMatchObject({ status: ImportJobStatus.SUCCEEDED, total: 1, imported: 0, duplicates: 1, errorCount: 1 });
  expect(job.errors).toEqual([
    {
      path: 'weave/test/good/copy.png',
      code: 'DUPLICATE_IMAGE',
      message: `the same bytes are already in the category as TRAIN good image ${existing?.id}, not TEST good`,
    },
  ]);
  expect(await imagesOf(datasetId)).toHaveLength(generated.imageCount);
});

test('a file refused (for its mask) does not make a later file with the same bytes a duplicate: that one is imported', async () => {
  const folder = path.join(root, uniqueName('same-bytes-'), 'weave');
  const bytes = await pngImage(41, 32, 32);
  const write = async (relative: string, content: Buffer): Promise<void> => {
    await mkdir(path.dirname(path.join(folder, relative)), { recursive: true });
    await writeFile(path.join(folder, relative), content);
  };
  // The defective copy comes first (test/ sorts before train/); its mask has the wrong size.
  await write('test/crack/000.png', bytes);
  await write('ground_truth/crack/000_mask.png', await pngMask(8, 8));
  await write('train/good/000.png', bytes);

  const datasetId = await createDataset();
  const keysBefore = await storedKeys();
  const job = await deliver(await startImport(datasetId, path.dirname(folder)));
  expect(job).toMatchObject({ status: ImportJobStatus.SUCCEEDED, total: 2, processed: 2, imported: 1 });
  const images = await imagesOf(datasetId);
  expect(images.map((image) => [image.originalFilename, image.split])).toEqual([['train/good/000.png', 'TRAIN']]);
  // Refused for its mask, or (had the train copy been stored first) for its label: never silently dropped.
  expect(job.errors).toHaveLength(1);
  expect(job.errors[0]?.path).toMatch(/^weave\/(test\/crack\/000\.png|ground_truth\/crack\/000_mask\.png)$/);
  expect(['MASK_MISMATCH', 'DUPLICATE_IMAGE']).toContain(job.errors[0]?.code);
  expect((await storedKeys()).filter((key) => !keysBefore.includes(key))).toEqual([images[0]?.objectKey]);
});

test('objects a run left without their image rows (its process died between the two) are deleted when the job runs again', async () => {
  const datasetId = await createDataset();
  const jobId = await startImport(datasetId);
  // As a run killed mid-image leaves it: RUNNING, an image and a mask written and recorded, no row.
  await services.db.importJobs.markRunning(jobId);
  const leftovers = [`images/${randomUUID()}`, `masks/${randomUUID()}`];
  for (const key of leftovers) {
    await services.db.importJobs.recordPendingObject(jobId, key);
    await services.objectStore.put(key, await pngImage(5), 'image/png');
  }
  const keysBefore = await storedKeys();
  expect(keysBefore).toEqual(expect.arrayContaining(leftovers));

  const job = await deliver(jobId);
  expect(job).toMatchObject({ status: ImportJobStatus.SUCCEEDED, imported: generated.imageCount, errorCount: 0 });
  const keysAfter = await storedKeys();
  for (const key of leftovers) expect(keysAfter).not.toContain(key);
  const added = keysAfter.filter((key) => !keysBefore.includes(key));
  expect(added).toHaveLength(generated.imageCount + generated.maskCount);
  expect(await services.db.importJobs.pendingObjectKeys(jobId)).toEqual([]);
});

test('a job that fails deletes the objects its unfinished images left', async () => {
  const datasetId = await createDataset();
  const jobId = await startImport(datasetId);
  const leftover = `images/${randomUUID()}`;
  await services.db.importJobs.recordPendingObject(jobId, leftover);
  await services.objectStore.put(leftover, await pngImage(6), 'image/png');
  await services.db.datasets.markDeleted(datasetId);

  expect((await deliver(jobId)).status).toBe(ImportJobStatus.FAILED);
  expect(await storedKeys()).not.toContain(leftover);
  expect(await services.db.importJobs.pendingObjectKeys(jobId)).toEqual([]);
});

test('a job queued (by an older version) to read the service’s own objects fails FORBIDDEN and reads none of them', async () => {
  const datasetId = await createDataset();
  const keysBefore = await storedKeys();
  for (const sourceS3Prefix of ['models/', 'inspections/', 'evaluations/', 'images/']) {
    const jobId = await services.db.importJobs.insertIfDatasetLive({
      datasetId,
      sourceS3Prefix,
      sourceLocalPath: null,
      categories: null,
      requestedBy: principal.apiKeyId,
    });
    const job = await deliver(jobId ?? '');
    expect(job.status).toBe(ImportJobStatus.FAILED);
    expect(job.errors.map((problem) => [problem.path, problem.code])).toEqual([[sourceS3Prefix, 'FORBIDDEN']]);
  }
  expect(await services.categories.listByDatasets([datasetId])).toEqual([]);
  expect(await storedKeys()).toEqual(keysBefore);
});

test('a delivery interrupted by its process stopping hands the job back QUEUED; the next one finishes it', async () => {
  const datasetId = await createDataset();
  const jobId = await startImport(datasetId);
  const stopping = new AbortController();
  stopping.abort();
  await expect(deliver(jobId, { signal: stopping.signal })).rejects.toBeInstanceOf(JobInterruptedError);
  const handedBack = await services.db.importJobs.get(jobId);
  expect(handedBack).toMatchObject({
    status: ImportJobStatus.QUEUED,
    attempts: 1,
    total: generated.imageCount,
    processed: 0,
  });

  expect(await deliver(jobId)).toMatchObject({
    status: ImportJobStatus.SUCCEEDED,
    attempts: 2,
    imported: generated.imageCount,
  });
});

test('a job left RUNNING by a process that died is queued again by the recovery', async () => {
  const datasetId = await createDataset();
  const jobId = await startImport(datasetId);
  await services.db.importJobs.markRunning(jobId);
  expect(await services.imports.recoverAbandonedJobs()).toBe(1);
  expect((await services.db.importJobs.get(jobId)).status).toBe(ImportJobStatus.QUEUED);
  expect(await services.imports.recoverAbandonedJobs()).toBe(0);
  expect(await deliver(jobId)).toMatchObject({ status: ImportJobStatus.SUCCEEDED, imported: generated.imageCount });
});

test('a dataset gone before the job ran fails it with that problem', async () => {
  const datasetId = await createDataset();
  const jobId = await startImport(datasetId);
  await services.db.datasets.markDeleted(datasetId);
  const job = await deliver(jobId);
  expect(job.status).toBe(ImportJobStatus.FAILED);
  expect(job.errors).toEqual([{ path: 'weave', code: 'NOT_FOUND', message: 'the dataset was deleted' }]);
  expect(job.finishedAt).not.toBeNull();
});

test('with workers running, a started import runs to its end on its own', async () => {
  const datasetId = await createDataset();
  await services.jobQueue.startWorkers();
  const jobId = await startImport(datasetId);
  const updates = await services.imports.watch(jobId);
  let last: ImportJobEntity | undefined;
  for await (const state of updates) last = state;
  expect(last).toMatchObject({ status: ImportJobStatus.SUCCEEDED, imported: generated.imageCount, attempts: 1 });
});
