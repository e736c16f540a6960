import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { DataSource, Repository } from 'typeorm';
import type { Principal } from '../auth/principal';
import type { CategoryEntity } from '../db/entities/category.entity';
import { FINAL_IMPORT_STATUSES, ImportJobEntity, ImportJobStatus, type ImportProblem } from '../db/entities/import-job.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../db/pagination';
import { AppError, badInput, ErrorCode, notFound } from '../errors';
import { IMAGE_CONTENT_TYPES, ImageValidationError, inspectImageBytes, validateMask, type ImageLimits } from '../images/image-bytes';
import { JobInterruptedError, type JobContext, type JobQueue, type QueueDefinition } from '../jobs/job-queue';
import { subscribeToLiveState } from '../pubsub/live-state';
import type { AppPubSub } from '../pubsub/pubsub';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import type { CategoryService } from './category.service';
import { checkCategoryName, isPlainFolderName } from '../domain/dataset-rules';
import { isUuid } from '../utils/ids';
import { queryRows } from '../db/sql';
import type { ImageService } from './image.service';
import { planCategoryImport, type MvtecSample } from '../mvtec/mvtec-layout';
import { checkS3Prefix, LocalMvtecSource, resolveLocalSource, S3MvtecSource, SourceFileError, type MvtecSource } from '../mvtec/mvtec-source';

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
  imageLimits: ImageLimits;
}

/** Problems kept in the job row; errorCount still counts every one. */
export const MAX_STORED_PROBLEMS = 1000;
const MAX_CATEGORIES_PER_IMPORT = 200;
/** Images read, checked and stored at once by one import. */
const IMAGES_IN_FLIGHT = 8;
const PROGRESS_INTERVAL_MS = 250;
/** How long a delivery waits for a job's lock (held briefly by a recovery, or for long by a live runner). */
const LOCK_WAIT_MS = 10_000;

type SampleOutcome = 'imported' | 'duplicate' | 'refused';

/** A failure that ends the whole job (no retry would help). */
class ImportAborted extends Error {
  constructor(
    readonly problem: ImportProblem,
  ) {
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

/**
 * Imports MVTec-AD-style folders into a dataset, in the background. The import_job row is
 * the state of record; the queue only delivers the work. Re-running a job (after a restart
 * or a retry) is safe: images are deduplicated by sha256 within their category, and images
 * this job itself stored before count as imported again, so the final counts are the same.
 */
export class MvtecImportService {
  private readonly repository: Repository<ImportJobEntity>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly objectStore: ObjectStore,
    private readonly jobQueue: JobQueue,
    private readonly pubSub: AppPubSub,
    private readonly categories: CategoryService,
    private readonly images: ImageService,
    private readonly settings: ImportSettings,
    private readonly logger: Logger,
  ) {
    this.repository = dataSource.getRepository(ImportJobEntity);
  }

  queueDefinition(): QueueDefinition<ImportJobPayload> {
    return {
      name: IMPORT_QUEUE,
      concurrency: 1,
      retryLimit: 2,
      retryDelaySeconds: 10,
      // Longer than any import should take; a crashed runner is found sooner by recoverAbandonedJobs.
      expireInSeconds: 4 * 3600,
      handle: (payload, context) => this.runJob(payload, context),
    };
  }

  async start(input: StartImportInput, principal: Principal): Promise<ImportJobEntity> {
    const { s3Prefix, localPath } = input.source;
    const given = [s3Prefix, localPath].filter((value) => value !== null && value !== undefined);
    if (given.length !== 1) throw badInput('source needs exactly one of s3Prefix and localPath', { argument: 'source' });
    const categories = input.categories ? [...new Set(input.categories.map((name, index) => checkCategoryName(name, `categories[${index}]`)))] : null;
    if (categories && (categories.length === 0 || categories.length > MAX_CATEGORIES_PER_IMPORT)) {
      throw badInput(`categories must name 1 to ${MAX_CATEGORIES_PER_IMPORT} folders, or be omitted for all`, { argument: 'categories' });
    }
    const sourceS3Prefix = s3Prefix !== null && s3Prefix !== undefined ? checkS3Prefix(s3Prefix) : null;
    const sourceLocalPath = localPath !== null && localPath !== undefined ? await resolveLocalSource(localPath, this.settings.importRoots) : null;
    if (!isUuid(input.datasetId)) throw notFound('Dataset', input.datasetId);

    const job = await this.dataSource.transaction(async (manager) => {
      // Share-locks the dataset: a deleteDataset running now either waits for this job or makes it NOT_FOUND.
      const created = await manager.query<Array<{ id: string }>>(
        `INSERT INTO import_job (dataset_id, source_s3_prefix, source_local_path, categories, requested_by)
         SELECT dataset.id, $2, $3, $4, $5 FROM dataset WHERE dataset.id = $1 AND dataset.deleted_at IS NULL FOR SHARE OF dataset
         RETURNING id`,
        [input.datasetId, sourceS3Prefix, sourceLocalPath, categories, principal.apiKeyId],
      );
      const id = created[0]?.id;
      if (!id) throw notFound('Dataset', input.datasetId);
      const payload: ImportJobPayload = { importJobId: id };
      await this.jobQueue.send(IMPORT_QUEUE, payload, manager);
      return manager.getRepository(ImportJobEntity).findOneByOrFail({ id });
    });
    this.jobQueue.wake(IMPORT_QUEUE);
    return job;
  }

  async findById(id: string): Promise<ImportJobEntity | null> {
    return isUuid(id) ? this.repository.findOneBy({ id }) : null;
  }

  list(datasetId: string | null | undefined, page: PageRequest): Promise<Page<ImportJobEntity>> {
    const query = this.repository.createQueryBuilder('job');
    if (datasetId) {
      if (!isUuid(datasetId)) throw notFound('Dataset', datasetId);
      query.where('job.datasetId = :datasetId', { datasetId });
    }
    return paginate(query, newestFirst<ImportJobEntity>('job'), page);
  }

  /** The job's current state at once, then each change, until it has finished. */
  async watch(id: string): Promise<AsyncIterableIterator<ImportJobEntity>> {
    const updates = await subscribeToLiveState({
      changes: this.pubSub.subscribe('IMPORT_JOB_UPDATED', id),
      load: () => this.findById(id),
      isFinal: (job) => FINAL_IMPORT_STATUSES.has(job.status),
      isSame: (previous, next) => previous.updatedAt.getTime() === next.updatedAt.getTime() && previous.status === next.status,
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
  async recoverAbandonedJobs(): Promise<number> {
    const running = await this.dataSource.query<Array<{ id: string }>>(`SELECT id FROM import_job WHERE status = 'RUNNING'`);
    let recovered = 0;
    for (const { id } of running) {
      const lock = await this.jobQueue.lock(`import:${id}`, 0);
      if (!lock) continue;
      try {
        const requeued = await this.dataSource.transaction(async (manager) => {
          const rows = await queryRows<{ id: string }>(manager, `UPDATE import_job SET status = 'QUEUED', updated_at = now() WHERE id = $1 AND status = 'RUNNING' RETURNING id`, [id]);
          if (rows.length === 0) return false;
          const payload: ImportJobPayload = { importJobId: id };
          await this.jobQueue.send(IMPORT_QUEUE, payload, manager);
          return true;
        });
        if (requeued) {
          recovered += 1;
          this.logger.warn({ importJobId: id }, 'import job was left running by a process that stopped; queued again');
          this.publish(id);
        }
      } finally {
        await lock.release();
      }
    }
    if (recovered > 0) this.jobQueue.wake(IMPORT_QUEUE);
    return recovered;
  }

  private async runJob({ importJobId }: ImportJobPayload, context: JobContext): Promise<void> {
    const lock = await this.jobQueue.lock(`import:${importJobId}`, LOCK_WAIT_MS);
    // Another process is running it (a duplicate delivery): that run finishes the job.
    if (!lock) return;
    try {
      const job = await this.findById(importJobId);
      if (!job || FINAL_IMPORT_STATUSES.has(job.status)) return;
      // Each attempt recounts from zero: already stored images are recognised, not stored twice.
      await this.dataSource.query(
        `UPDATE import_job SET status = 'RUNNING', attempts = attempts + 1, started_at = coalesce(started_at, now()),
                total = NULL, processed = 0, imported = 0, duplicates = 0, errors = '[]', error_count = 0, updated_at = now()
          WHERE id = $1`,
        [importJobId],
      );
      this.publish(importJobId);
      const progress = new ImportProgress((current, problems) => this.writeProgress(importJobId, current, problems));
      try {
        await this.importAll(job, progress, context.signal);
        await progress.flush();
        await this.finish(importJobId, ImportJobStatus.SUCCEEDED);
      } catch (error) {
        if (error instanceof JobInterruptedError) {
          await progress.flush();
          await this.setStatus(importJobId, ImportJobStatus.QUEUED);
          throw error;
        }
        if (error instanceof ImportAborted || context.isLastAttempt) {
          const problem = error instanceof ImportAborted ? error.problem : { path: '', code: ErrorCode.INTERNAL_SERVER_ERROR, message: 'the import failed; see the server log' };
          if (!(error instanceof ImportAborted)) this.logger.error({ err: error, importJobId }, 'import job failed');
          progress.report(problem);
          await progress.flush();
          await this.finish(importJobId, ImportJobStatus.FAILED);
          return;
        }
        await progress.flush().catch(() => undefined);
        await this.setStatus(importJobId, ImportJobStatus.QUEUED).catch(() => undefined);
        throw error;
      }
    } finally {
      await lock.release();
    }
  }

  private async writeProgress(importJobId: string, progress: ImportProgress, problems: ImportProblem[]): Promise<void> {
    await this.dataSource.query(
      `UPDATE import_job SET total = $2, processed = $3, imported = $4, duplicates = $5, error_count = $6,
              errors = errors || $7::jsonb, updated_at = now()
        WHERE id = $1`,
      [importJobId, progress.total, progress.processed, progress.imported, progress.duplicates, progress.errorCount, JSON.stringify(problems)],
    );
    this.publish(importJobId);
  }

  private async setStatus(importJobId: string, status: ImportJobStatus): Promise<void> {
    await this.dataSource.query('UPDATE import_job SET status = $2, updated_at = now() WHERE id = $1', [importJobId, status]);
    this.publish(importJobId);
  }

  private async finish(importJobId: string, status: ImportJobStatus): Promise<void> {
    await this.dataSource.query('UPDATE import_job SET status = $2, finished_at = now(), updated_at = now() WHERE id = $1', [importJobId, status]);
    this.publish(importJobId);
  }

  private async openSource(job: ImportJobEntity): Promise<MvtecSource> {
    if (job.sourceS3Prefix) return new S3MvtecSource(this.objectStore, job.sourceS3Prefix);
    const localPath = job.sourceLocalPath ?? '';
    try {
      // Checked again: IMPORT_ROOTS or the folder may have changed since the job was queued.
      return new LocalMvtecSource(await resolveLocalSource(localPath, this.settings.importRoots));
    } catch (error) {
      if (error instanceof AppError) throw new ImportAborted({ path: localPath, code: error.code, message: error.message });
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
        progress.report({ path: name, code: ErrorCode.UNEXPECTED_FILE, message: 'not a plain folder name; this category is not imported' });
        continue;
      }
      const files = await source.listFiles(name);
      if (files === null) {
        progress.report({ path: name, code: ErrorCode.SOURCE_NOT_FOUND, message: `the source has no folder "${name}"` });
        continue;
      }
      const plan = planCategoryImport(files);
      for (const problem of plan.problems) progress.report({ ...problem, path: `${name}/${problem.path}` });
      plans.push({ name, samples: plan.samples });
    }
    if (names.length === 0) progress.report({ path: '', code: ErrorCode.SOURCE_NOT_FOUND, message: 'the source holds no category folder' });
    for (const { name, samples } of plans) {
      if (samples.length === 0) continue;
      const category = await this.categories.findOrCreate(job.datasetId, name, job.requestedBy);
      if (!category) throw new ImportAborted({ path: name, code: ErrorCode.NOT_FOUND, message: 'the dataset was deleted' });
      for (const sample of samples) work.push({ category, name, sample });
    }
    progress.total = work.length;
    await progress.flush();

    const claimed = new Set<string>();
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
          progress.count(await this.importSample(job, source, item.name, item.category, item.sample, progress, claimed));
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
    claimed: Set<string>,
  ): Promise<SampleOutcome> {
    const refuse = (path: string, code: string, message: string): SampleOutcome => {
      progress.report({ path: `${categoryName}/${path}`, code, message });
      return 'refused';
    };
    const read = async (path: string): Promise<Buffer | SampleOutcome> => {
      try {
        return await source.read(categoryName, path, this.settings.maxBytes);
      } catch (error) {
        if (error instanceof SourceFileError) return refuse(path, error.code, error.message);
        throw error;
      }
    };

    const bytes = await read(sample.imagePath);
    if (!Buffer.isBuffer(bytes)) return bytes;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    // The first file of this run with these bytes stands for them; later ones are duplicates.
    const claim = `${category.id}:${sha256}`;
    if (claimed.has(claim)) return 'duplicate';
    claimed.add(claim);
    const existing = await this.images.findLiveBySha256(category.id, sha256);
    if (existing) {
      if (existing.importJobId === job.id) return 'imported';
      if (existing.split !== sample.split || existing.defectType !== sample.defectType) {
        const label = (split: string, defectType: string | null): string => `${split} ${defectType ?? 'good'}`;
        refuse(sample.imagePath, ErrorCode.DUPLICATE_IMAGE, `the same bytes are already in the category as ${label(existing.split, existing.defectType)} image ${existing.id}, not ${label(sample.split, sample.defectType)}`);
      }
      return 'duplicate';
    }

    const limits = this.settings.imageLimits;
    let info;
    try {
      info = await inspectImageBytes(bytes, limits);
    } catch (error) {
      if (error instanceof ImageValidationError) return refuse(sample.imagePath, error.code, error.message);
      throw error;
    }
    let maskBytes: Buffer | null = null;
    let maskContentType: string | null = null;
    if (sample.maskPath) {
      const maskRead = await read(sample.maskPath);
      if (!Buffer.isBuffer(maskRead)) return maskRead;
      try {
        maskContentType = IMAGE_CONTENT_TYPES[(await validateMask(maskRead, info.width, info.height, limits)).format];
      } catch (error) {
        if (error instanceof ImageValidationError) return refuse(sample.maskPath, error.code, error.message);
        throw error;
      }
      maskBytes = maskRead;
    }

    const imageId = randomUUID();
    const imageKey = objectKeys.image(imageId);
    const maskKey = sample.maskPath ? objectKeys.mask(imageId) : null;
    try {
      await source.store(categoryName, sample.imagePath, bytes, imageKey, info.contentType, this.objectStore);
      if (sample.maskPath && maskKey && maskBytes && maskContentType) await source.store(categoryName, sample.maskPath, maskBytes, maskKey, maskContentType, this.objectStore);
      const outcome = await this.dataSource.transaction((manager) =>
        this.images.insert(manager, {
          id: imageId,
          categoryId: category.id,
          split: sample.split,
          defectType: sample.defectType,
          width: info.width,
          height: info.height,
          channels: info.channels,
          format: info.format,
          byteSize: bytes.length,
          sha256,
          objectKey: imageKey,
          maskObjectKey: maskKey,
          originalFilename: sample.imagePath,
          uploadedBy: job.requestedBy,
          importJobId: job.id,
        }),
      );
      if (outcome.kind === 'inserted') return 'imported';
      await this.images.removeObjects(maskKey ? [imageKey, maskKey] : [imageKey]);
      if (outcome.kind === 'category-gone') throw new ImportAborted({ path: categoryName, code: ErrorCode.NOT_FOUND, message: 'the category was deleted during the import' });
      return 'duplicate';
    } catch (error) {
      if (!(error instanceof ImportAborted)) await this.images.removeObjects(maskKey ? [imageKey, maskKey] : [imageKey]);
      throw error;
    }
  }
}
