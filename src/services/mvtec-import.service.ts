import type { Logger } from 'pino';
import type { Principal } from '../auth/principal';
import type { CategoryEntity } from '../db/entities/category.entity';
import type { ImageEntity } from '../db/entities/image.entity';
import {
  FINAL_IMPORT_STATUSES,
  ImportJobStatus,
  type ImportJobEntity,
  type ImportProblem,
} from '../db/entities/import-job.entity';
import type { Page, PageRequest } from '../db/pagination';
import type { Database } from '../db/repositories';
import { checkCategoryName, isPlainFolderName } from '../domain/dataset-rules';
import { AppError, badInput, ErrorCode, notFound } from '../errors';
import { JobInterruptedError, type JobQueue, type QueueDefinition } from '../jobs/job-queue';
import { TrackedJobs, type FailureCause, type RequeueCause } from '../jobs/tracked-job';
import { planCategoryImport, type MvtecSample } from '../mvtec/mvtec-layout';
import {
  checkS3Prefix,
  LocalMvtecSource,
  resolveLocalSource,
  S3MvtecSource,
  SourceFileError,
  type MvtecSource,
} from '../mvtec/mvtec-source';
import { subscribeToLiveState } from '../pubsub/live-state';
import type { AppPubSub } from '../pubsub/pubsub';
import type { ObjectStore } from '../storage/object-store';
import { isUuid } from '../utils/ids';
import type { CategoryService } from './category.service';
import { sha256Hex, type ImageIngestService, type IngestOutcome, type Refusal } from './image-ingest.service';

export const IMPORT_QUEUE = 'dataset-import';

export interface ImportJobPayload {
  importJobId: string;
}

export interface StartImportInput {
  datasetId: string;
  source: { s3Prefix?: string | null; localPath?: string | null };
  /** Category folders to import; omitted: every folder of the source. */
  categories?: string[] | null;
}

export interface ImportSettings {
  importRoots: readonly string[];
  maxBytes: number;
}

/** Problems kept in the job row; errorCount still counts every one. */
export const MAX_STORED_PROBLEMS = 1000;
const MAX_CATEGORIES_PER_IMPORT = 200;
/** Images read, checked and stored at once by one import. */
const IMAGES_IN_FLIGHT = 8;
const PROGRESS_INTERVAL_MS = 250;

type SampleOutcome = 'imported' | 'duplicate' | 'refused';

/**
 * The files of one run, per `<category id>:<sha256>`: the first to claim some bytes stores them,
 * and its promise says which image holds them once that is known (null: it was refused, and
 * the next file with those bytes claims them in turn).
 */
type Claims = Map<string, Promise<ImageEntity | null>>;

/** A failure that ends the whole job (no retry would help). */
class ImportAborted extends Error {
  constructor(readonly problem: ImportProblem) {
    super(problem.message);
  }
}

/** Counters of one run, written to the job row at most every PROGRESS_INTERVAL_MS. */
class ImportProgress {
  total: number | null = null;
  processed = 0;
  imported = 0;
  duplicates = 0;
  errorCount = 0;
  private storedProblems = 0;
  private pendingProblems: ImportProblem[] = [];
  private lastFlush = 0;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly write: (progress: ImportProgress, newProblems: ImportProblem[]) => Promise<void>) {}

  report(problem: ImportProblem): void {
    this.errorCount += 1;
    if (this.storedProblems + this.pendingProblems.length < MAX_STORED_PROBLEMS) this.pendingProblems.push(problem);
  }

  count(outcome: SampleOutcome): void {
    this.processed += 1;
    if (outcome === 'imported') this.imported += 1;
    if (outcome === 'duplicate') this.duplicates += 1;
  }

  async flushIfDue(): Promise<void> {
    if (Date.now() - this.lastFlush >= PROGRESS_INTERVAL_MS) await this.flush();
  }

  /** Writes are serialised, each carrying the counters as they are when it runs. */
  flush(): Promise<void> {
    this.lastFlush = Date.now();
    this.flushing = this.flushing.then(async () => {
      const problems = this.pendingProblems;
      this.pendingProblems = [];
      this.storedProblems += problems.length;
      await this.write(this, problems);
    });
    return this.flushing;
  }
}

/** What one run of an import job works with. */
interface ImportRun {
  job: ImportJobEntity;
  progress: ImportProgress;
}

/**
 * Imports MVTec-AD-style folders into a dataset, in the background. The import_job row is
 * the state of record; the queue only delivers the work. Re-running a job (after a restart
 * or a retry) is safe: images are deduplicated by sha256 within their category, and images
 * this job itself stored before count as imported again, so the final counts are the same.
 */
export class MvtecImportService {
  private readonly jobs: TrackedJobs<ImportJobPayload, ImportRun, ImportProblem>;

  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    jobQueue: JobQueue,
    private readonly pubSub: AppPubSub,
    private readonly categories: CategoryService,
    private readonly ingest: ImageIngestService,
    private readonly settings: ImportSettings,
    private readonly logger: Logger,
  ) {
    this.jobs = new TrackedJobs(db, jobQueue, logger, {
      queue: {
        name: IMPORT_QUEUE,
        concurrency: 1,
        retryLimit: 2,
        retryDelaySeconds: 10,
        // Longer than any import should take; a crashed runner is found sooner by recoverAbandonedJobs.
        expireInSeconds: 4 * 3600,
      },
      label: 'import job',
      idField: 'importJobId',
      lockKey: (id) => `import:${id}`,
      payload: (id) => ({ importJobId: id }),
      idOf: (payload) => payload.importJobId,
      publish: (id) => this.publish(id),
      listRunning: () => db.importJobs.listRunningIds(),
      requeueIfRunning: (tx, id) => tx.importJobs.requeueIfRunning(id),
      begin: (run) => this.begin(run.id),
      work: (state, run) => this.work(state, run.signal),
      classify: (error) => (error instanceof ImportAborted ? { kind: 'failed', reason: error.problem } : null),
      requeue: (state, why) => this.requeue(state, why),
      fail: (state, why) => this.fail(state, why),
      // Whatever the outcome; an error here must not hide the run's own.
      end: ({ job }) =>
        this.removeLeftoverObjects(job.id).catch((error: unknown) =>
          this.logger.warn({ err: error, importJobId: job.id }, 'could not look for objects an import left'),
        ),
    });
  }

  queueDefinition(): QueueDefinition<ImportJobPayload> {
    return this.jobs.queueDefinition();
  }

  async start(input: StartImportInput, principal: Principal): Promise<ImportJobEntity> {
    const { s3Prefix, localPath } = input.source;
    const given = [s3Prefix, localPath].filter((value) => value !== null && value !== undefined);
    if (given.length !== 1)
      throw badInput('source needs exactly one of s3Prefix and localPath', { argument: 'source' });
    const categories = input.categories
      ? [...new Set(input.categories.map((name, index) => checkCategoryName(name, `categories[${index}]`)))]
      : null;
    if (categories && (categories.length === 0 || categories.length > MAX_CATEGORIES_PER_IMPORT)) {
      throw badInput(`categories must name 1 to ${MAX_CATEGORIES_PER_IMPORT} folders, or be omitted for all`, {
        argument: 'categories',
      });
    }
    const sourceS3Prefix = s3Prefix !== null && s3Prefix !== undefined ? checkS3Prefix(s3Prefix) : null;
    const sourceLocalPath =
      localPath !== null && localPath !== undefined
        ? await resolveLocalSource(localPath, this.settings.importRoots)
        : null;
    if (!isUuid(input.datasetId)) throw notFound('Dataset', input.datasetId);

    const job = await this.db.transaction(async (tx) => {
      const id = await tx.importJobs.insertIfDatasetLive({
        datasetId: input.datasetId,
        sourceS3Prefix,
        sourceLocalPath,
        categories,
        requestedBy: principal.apiKeyId,
      });
      if (!id) throw notFound('Dataset', input.datasetId);
      await this.jobs.enqueue(tx, id);
      return tx.importJobs.get(id);
    });
    this.jobs.wake();
    return job;
  }

  async findById(id: string): Promise<ImportJobEntity | null> {
    return isUuid(id) ? this.db.importJobs.findById(id) : null;
  }

  list(datasetId: string | null | undefined, page: PageRequest): Promise<Page<ImportJobEntity>> {
    if (datasetId && !isUuid(datasetId)) throw notFound('Dataset', datasetId);
    return this.db.importJobs.page(datasetId || null, page);
  }

  /** The job's current state at once, then each change, until it has finished. */
  async watch(id: string): Promise<AsyncIterableIterator<ImportJobEntity>> {
    const updates = await subscribeToLiveState({
      changes: this.pubSub.subscribe('IMPORT_JOB_UPDATED', id),
      connection: this.pubSub.connection,
      load: () => this.findById(id),
      isFinal: (job) => FINAL_IMPORT_STATUSES.has(job.status),
      isSame: (previous, next) =>
        previous.updatedAt.getTime() === next.updatedAt.getTime() && previous.status === next.status,
    });
    if (!updates) throw notFound('Import job', id);
    return updates;
  }

  private publish(importJobId: string): void {
    this.pubSub.publish('IMPORT_JOB_UPDATED', importJobId, { importJobId });
  }

  /**
   * Queues again the jobs marked RUNNING whose runner is gone (its process died: PostgreSQL
   * dropped its lock). Run when workers start and periodically.
   */
  recoverAbandonedJobs(): Promise<number> {
    return this.jobs.recoverAbandoned();
  }

  /** Marks the job RUNNING, unless it is gone or finished. */
  private async begin(importJobId: string): Promise<ImportRun | null> {
    const job = await this.findById(importJobId);
    if (!job) return null;
    // A process that died mid-import left the objects of its unfinished images behind.
    await this.removeLeftoverObjects(importJobId);
    if (FINAL_IMPORT_STATUSES.has(job.status)) return null;
    // Each attempt recounts from zero: already stored images are recognised, not stored twice.
    await this.db.importJobs.markRunning(importJobId);
    return {
      job,
      progress: new ImportProgress((current, problems) => this.writeProgress(importJobId, current, problems)),
    };
  }

  private async work({ job, progress }: ImportRun, signal: AbortSignal): Promise<void> {
    await this.importAll(job, progress, signal);
    await progress.flush();
    await this.db.importJobs.finish(job.id, ImportJobStatus.SUCCEEDED);
    this.publish(job.id);
  }

  private async requeue({ job, progress }: ImportRun, why: RequeueCause): Promise<void> {
    // After an error, the job goes back to QUEUED even if its progress cannot be written.
    if (why.cause === 'error') await progress.flush().catch(() => undefined);
    else await progress.flush();
    await this.db.importJobs.setStatus(job.id, ImportJobStatus.QUEUED);
  }

  private async fail({ job, progress }: ImportRun, why: FailureCause<ImportProblem>): Promise<void> {
    if (why.cause === 'error') this.logger.error({ err: why.error, importJobId: job.id }, 'import job failed');
    const unexpected: ImportProblem = {
      path: '',
      code: ErrorCode.INTERNAL_SERVER_ERROR,
      message: 'the import failed; see the server log',
    };
    progress.report(why.cause === 'failed' ? why.reason : unexpected);
    await progress.flush();
    await this.db.importJobs.finish(job.id, ImportJobStatus.FAILED);
  }

  /**
   * Deletes the objects the job recorded before writing them and that no image row took (see
   * importSample). On failure they stay recorded, for the next run (or the orphan sweep).
   */
  private async removeLeftoverObjects(importJobId: string): Promise<void> {
    const keys = await this.db.importJobs.pendingObjectKeys(importJobId);
    if (keys.length === 0) return;
    try {
      await this.objectStore.delete(keys);
    } catch (error) {
      this.logger.warn({ err: error, importJobId, count: keys.length }, 'could not delete objects an import left');
      return;
    }
    await this.db.importJobs.clearPendingObjects(keys);
    this.logger.info({ importJobId, count: keys.length }, 'deleted objects an unfinished import left');
  }

  private async writeProgress(importJobId: string, progress: ImportProgress, problems: ImportProblem[]): Promise<void> {
    await this.db.importJobs.writeProgress(importJobId, progress, problems);
    this.publish(importJobId);
  }

  private async openSource(job: ImportJobEntity): Promise<MvtecSource> {
    const { sourceS3Prefix } = job;
    const localPath = job.sourceLocalPath ?? '';
    // Checked again: IMPORT_ROOTS, the folder or the rules may have changed since the job was queued.
    try {
      if (sourceS3Prefix) return new S3MvtecSource(this.objectStore, checkS3Prefix(sourceS3Prefix));
      return new LocalMvtecSource(await resolveLocalSource(localPath, this.settings.importRoots));
    } catch (error) {
      if (error instanceof AppError)
        throw new ImportAborted({ path: sourceS3Prefix ?? localPath, code: error.code, message: error.message });
      throw error;
    }
  }

  private async importAll(job: ImportJobEntity, progress: ImportProgress, signal: AbortSignal): Promise<void> {
    const source = await this.openSource(job);
    const names = job.categories ?? (await source.listCategories());
    const work: Array<{ category: CategoryEntity; name: string; sample: MvtecSample }> = [];
    const plans: Array<{ name: string; samples: MvtecSample[] }> = [];
    for (const name of names) {
      if (!isPlainFolderName(name)) {
        progress.report({
          path: name,
          code: ErrorCode.UNEXPECTED_FILE,
          message: 'not a plain folder name; this category is not imported',
        });
        continue;
      }
      const files = await source.listFiles(name);
      if (files === null) {
        progress.report({
          path: name,
          code: ErrorCode.SOURCE_NOT_FOUND,
          message: `the source has no folder "${name}"`,
        });
        continue;
      }
      const plan = planCategoryImport(files);
      for (const problem of plan.problems) progress.report({ ...problem, path: `${name}/${problem.path}` });
      plans.push({ name, samples: plan.samples });
    }
    if (names.length === 0)
      progress.report({ path: '', code: ErrorCode.SOURCE_NOT_FOUND, message: 'the source holds no category folder' });
    for (const { name, samples } of plans) {
      if (samples.length === 0) continue;
      const category = await this.categories.findOrCreate(job.datasetId, name, job.requestedBy);
      if (!category)
        throw new ImportAborted({ path: name, code: ErrorCode.NOT_FOUND, message: 'the dataset was deleted' });
      for (const sample of samples) work.push({ category, name, sample });
    }
    progress.total = work.length;
    await progress.flush();

    const claims: Claims = new Map();
    let next = 0;
    let failure: unknown = null;
    const worker = async (): Promise<void> => {
      while (next < work.length && failure === null) {
        if (signal.aborted) {
          failure = new JobInterruptedError();
          return;
        }
        const item = work[next] as (typeof work)[number];
        next += 1;
        try {
          progress.count(await this.importSample(job, source, item.name, item.category, item.sample, progress, claims));
          await progress.flushIfDue();
        } catch (error) {
          failure ??= error;
        }
      }
    };
    // Every worker finishes its current image before the job stops, so nothing writes after the lock is released.
    await Promise.all(Array.from({ length: Math.min(IMAGES_IN_FLIGHT, work.length) }, worker));
    if (failure !== null) throw failure;
  }

  /** One image (and its mask): refused with a problem, recognised as already there, or stored. */
  private async importSample(
    job: ImportJobEntity,
    source: MvtecSource,
    categoryName: string,
    category: CategoryEntity,
    sample: MvtecSample,
    progress: ImportProgress,
    claims: Claims,
  ): Promise<SampleOutcome> {
    const { imagePath } = sample;
    const refuse = (path: string, { code, message }: Refusal): SampleOutcome => {
      progress.report({ path: `${categoryName}/${path}`, code, message });
      return 'refused';
    };
    const read = async (path: string): Promise<Buffer | Refusal> => {
      try {
        return await source.read(categoryName, path, this.settings.maxBytes);
      } catch (error) {
        if (error instanceof SourceFileError) return { code: error.code, message: error.message };
        throw error;
      }
    };

    const bytes = await read(imagePath);
    if (!Buffer.isBuffer(bytes)) return refuse(imagePath, bytes);
    const sha256 = sha256Hex(bytes);
    // A file of this run with the same bytes stands for them only once they are stored: until
    // then this one waits, and if that one is refused, this one takes its place.
    const claim = `${category.id}:${sha256}`;
    for (let earlier = claims.get(claim); earlier; earlier = claims.get(claim)) {
      const holder = await earlier;
      if (holder) return this.duplicateOf(holder, sample, refuse);
    }
    let settle: (holder: ImageEntity | null) => void = () => undefined;
    claims.set(claim, new Promise((resolve) => (settle = resolve)));
    let holder: ImageEntity | null = null;
    try {
      const stored = await this.storeSample(job, source, categoryName, category, sample, bytes, sha256, read);
      if (stored.kind === 'inserted') {
        holder = stored.image;
        return 'imported';
      }
      if (stored.kind === 'invalid')
        return refuse(stored.part === 'mask' && sample.maskPath !== null ? sample.maskPath : imagePath, stored);
      if (stored.kind === 'category-gone') {
        throw new ImportAborted({
          path: categoryName,
          code: ErrorCode.NOT_FOUND,
          message: 'the category was deleted during the import',
        });
      }
      holder = stored.existing;
      // Stored by an earlier attempt of this job: counted as imported, so every attempt ends with the same counts.
      if (!stored.foundAtInsert && stored.existing.importJobId === job.id) return 'imported';
      return this.duplicateOf(stored.existing, sample, refuse);
    } finally {
      if (holder === null) claims.delete(claim);
      settle(holder);
    }
  }

  /**
   * Validates and stores the image and its mask through the ingest. Each object is recorded as the
   * job's before it is written, and forgotten in the transaction that inserts its image, so what a
   * run that dies in between leaves is deleted when the job runs again (removeLeftoverObjects).
   */
  private async storeSample(
    job: ImportJobEntity,
    source: MvtecSource,
    categoryName: string,
    category: CategoryEntity,
    sample: MvtecSample,
    bytes: Buffer,
    sha256: string,
    read: (path: string) => Promise<Buffer | Refusal>,
  ): Promise<IngestOutcome> {
    const { imagePath, maskPath } = sample;
    const written: string[] = [];
    const outcome = await this.ingest.ingest({
      categoryId: category.id,
      split: sample.split,
      defectType: sample.defectType,
      bytes,
      sha256,
      readMask: maskPath !== null ? () => read(maskPath) : null,
      originalFilename: imagePath,
      uploadedBy: job.requestedBy,
      importJobId: job.id,
      store: async (part, key, partBytes, contentType) => {
        await this.db.importJobs.recordPendingObject(job.id, key);
        written.push(key);
        const path = part === 'mask' && maskPath !== null ? maskPath : imagePath;
        await source.store(categoryName, path, partBytes, key, contentType, this.objectStore);
      },
      beforeInsert: (tx) => tx.importJobs.clearPendingObjects(written),
    });
    // Not inserted: the ingest removed what it wrote. (When it throws, the records stay for removeLeftoverObjects.)
    if (outcome.kind !== 'inserted') await this.db.importJobs.clearPendingObjects(written);
    return outcome;
  }

  /** A file whose bytes the category already holds: a duplicate, and a problem when its labels differ. */
  private duplicateOf(
    existing: ImageEntity,
    sample: MvtecSample,
    refuse: (path: string, refusal: Refusal) => SampleOutcome,
  ): SampleOutcome {
    if (existing.split !== sample.split || existing.defectType !== sample.defectType) {
      const label = (split: string, defectType: string | null): string => `${split} ${defectType ?? 'good'}`;
      const labels = {
        existing: label(existing.split, existing.defectType),
        sample: label(sample.split, sample.defectType),
      };
      refuse(sample.imagePath, {
        code: ErrorCode.DUPLICATE_IMAGE,
        message: `the same bytes are already in the category as ${labels.existing} image ${existing.id}, not ${labels.sample}`,
      });
    }
    return 'duplicate';
  }
}
