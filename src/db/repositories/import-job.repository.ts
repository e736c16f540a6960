import type { EntityManager, Repository } from 'typeorm';
import { ImportJobEntity, type ImportJobStatus, type ImportProblem } from '../entities/import-job.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../pagination';
import { queryRows } from '../sql';

export type NewImportJob = Pick<
  ImportJobEntity,
  'datasetId' | 'sourceS3Prefix' | 'sourceLocalPath' | 'categories' | 'requestedBy'
>;

/** The counters of a run, as ImportProgress keeps them. */
export interface ImportCounters {
  total: number | null;
  processed: number;
  imported: number;
  duplicates: number;
  errorCount: number;
}

/** The SQL of the import_job table. */
export class ImportJobRepository {
  private readonly repository: Repository<ImportJobEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(ImportJobEntity);
  }

  /**
   * Inserts a QUEUED job into a live dataset; its id, or null if the dataset is gone. Share-locks
   * the dataset: a deleteDataset running now either waits for this job or makes it NOT_FOUND.
   */
  async insertIfDatasetLive(job: NewImportJob): Promise<string | null> {
    const created = await this.manager.query<Array<{ id: string }>>(
      `INSERT INTO import_job (dataset_id, source_s3_prefix, source_local_path, categories, requested_by)
       SELECT dataset.id, $2, $3, $4, $5 FROM dataset WHERE dataset.id = $1 AND dataset.deleted_at IS NULL FOR SHARE OF dataset
       RETURNING id`,
      [job.datasetId, job.sourceS3Prefix, job.sourceLocalPath, job.categories, job.requestedBy],
    );
    return created[0]?.id ?? null;
  }

  findById(id: string): Promise<ImportJobEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /** A row known to exist (read back after a change). */
  get(id: string): Promise<ImportJobEntity> {
    return this.repository.findOneByOrFail({ id });
  }

  /** Jobs, of one dataset or of all, newest first. */
  page(datasetId: string | null, page: PageRequest): Promise<Page<ImportJobEntity>> {
    const query = this.repository.createQueryBuilder('job');
    if (datasetId) query.where('job.datasetId = :datasetId', { datasetId });
    return paginate(query, newestFirst<ImportJobEntity>('job'), page);
  }

  /** The id of a QUEUED or RUNNING import into the dataset, if there is one. */
  async findActiveIdOfDataset(datasetId: string): Promise<string | null> {
    const active = await this.manager.query<Array<{ id: string }>>(
      `SELECT id FROM import_job WHERE dataset_id = $1 AND status IN ('QUEUED', 'RUNNING') LIMIT 1`,
      [datasetId],
    );
    return active[0]?.id ?? null;
  }

  async listRunningIds(): Promise<string[]> {
    const rows = await this.manager.query<Array<{ id: string }>>(`SELECT id FROM import_job WHERE status = 'RUNNING'`);
    return rows.map((row) => row.id);
  }

  /** RUNNING → QUEUED; false if it was not RUNNING. */
  async requeueIfRunning(id: string): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE import_job SET status = 'QUEUED', updated_at = now() WHERE id = $1 AND status = 'RUNNING' RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  /** RUNNING, one attempt more, counting from zero again: already stored images are recognised, not stored twice. */
  async markRunning(id: string): Promise<void> {
    await this.manager.query(
      `UPDATE import_job SET status = 'RUNNING', attempts = attempts + 1, started_at = coalesce(started_at, now()),
              total = NULL, processed = 0, imported = 0, duplicates = 0, errors = '[]', error_count = 0, updated_at = now()
        WHERE id = $1`,
      [id],
    );
  }

  /** Writes the counters and appends the problems found since the last write. */
  async writeProgress(id: string, counters: ImportCounters, newProblems: readonly ImportProblem[]): Promise<void> {
    await this.manager.query(
      `UPDATE import_job SET total = $2, processed = $3, imported = $4, duplicates = $5, error_count = $6,
              errors = errors || $7::jsonb, updated_at = now()
        WHERE id = $1`,
      [
        id,
        counters.total,
        counters.processed,
        counters.imported,
        counters.duplicates,
        counters.errorCount,
        JSON.stringify(newProblems),
      ],
    );
  }

  /** Notes an object the job is about to write, before it writes it (see pendingObjectKeys). */
  async recordPendingObject(id: string, objectKey: string): Promise<void> {
    await this.manager.query('INSERT INTO import_pending_object (object_key, import_job_id) VALUES ($1, $2)', [
      objectKey,
      id,
    ]);
  }

  /** Forgets written objects: in the transaction that inserts their image, or once they are removed again. */
  async clearPendingObjects(objectKeys: readonly string[]): Promise<void> {
    if (objectKeys.length === 0) return;
    await this.manager.query('DELETE FROM import_pending_object WHERE object_key = ANY($1::text[])', [objectKeys]);
  }

  /**
   * Objects the job recorded and that no committed image took: left by a run that died (or failed)
   * between writing them and inserting their row.
   */
  async pendingObjectKeys(id: string): Promise<string[]> {
    const rows = await this.manager.query<Array<{ object_key: string }>>(
      'SELECT object_key FROM import_pending_object WHERE import_job_id = $1 ORDER BY object_key',
      [id],
    );
    return rows.map((row) => row.object_key);
  }

  async setStatus(id: string, status: ImportJobStatus): Promise<void> {
    await this.manager.query('UPDATE import_job SET status = $2, updated_at = now() WHERE id = $1', [id, status]);
  }

  /** A final status, with the time it was reached. */
  async finish(id: string, status: ImportJobStatus): Promise<void> {
    await this.manager.query(
      'UPDATE import_job SET status = $2, finished_at = now(), updated_at = now() WHERE id = $1',
      [id, status],
    );
  }
}
