import type { EntityManager, Repository } from 'typeorm';
import { ModelStatus, ModelVersionEntity } from '../entities/model-version.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../pagination';
import { queryRows } from '../sql';

/** A new version row: VALIDATING, its contract fields still unknown. */
export type NewModelVersion = Pick<
  ModelVersionEntity,
  | 'id'
  | 'categoryId'
  | 'name'
  | 'version'
  | 'objectKey'
  | 'sha256'
  | 'byteSize'
  | 'threshold'
  | 'snapshotId'
  | 'createdBy'
>;

/** What validation writes: READY with the contract fields, or FAILED with the reason. */
export type ValidationOutcome = Partial<
  Omit<ModelVersionEntity, 'id' | 'categoryId' | 'name' | 'version' | 'createdAt'>
>;

/** The SQL of the model_version table. */
export class ModelRepository {
  private readonly repository: Repository<ModelVersionEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(ModelVersionEntity);
  }

  findById(id: string): Promise<ModelVersionEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /** A row known to exist (read back after a change). */
  get(id: string): Promise<ModelVersionEntity> {
    return this.repository.findOneByOrFail({ id });
  }

  /** The active versions of the given categories (at most one each). */
  findActiveOfCategories(categoryIds: readonly string[]): Promise<ModelVersionEntity[]> {
    return this.repository
      .createQueryBuilder('model')
      .where('model.categoryId IN (:...ids) AND model.isActive', { ids: [...categoryIds] })
      .getMany();
  }

  /** The active version of a category that is not deleted; null for a deleted category too. */
  findActiveOfLiveCategory(categoryId: string): Promise<ModelVersionEntity | null> {
    return this.repository
      .createQueryBuilder('model')
      .innerJoin('model.category', 'category', 'category.deletedAt IS NULL')
      .where('model.categoryId = :categoryId AND model.isActive', { categoryId })
      .getOne();
  }

  /** Every active READY version (the ones each process keeps loaded). */
  listActiveReady(): Promise<ModelVersionEntity[]> {
    return this.repository.find({ where: { isActive: true, status: ModelStatus.READY } });
  }

  async listActiveReadyIds(): Promise<string[]> {
    const rows = await this.repository.find({
      select: { id: true },
      where: { isActive: true, status: ModelStatus.READY },
    });
    return rows.map((row) => row.id);
  }

  /** Versions of a category, newest first. */
  pageOfCategory(categoryId: string, page: PageRequest): Promise<Page<ModelVersionEntity>> {
    const query = this.repository.createQueryBuilder('model').where('model.categoryId = :categoryId', { categoryId });
    return paginate(query, newestFirst<ModelVersionEntity>('model'), page);
  }

  /**
   * Within a transaction: the version number the next registration of this category and name
   * gets. Holds a lock until the transaction ends, so concurrent registrations do not collide.
   */
  async lockNextVersion(categoryId: string, name: string): Promise<number> {
    await this.manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`model_version:${categoryId}:${name}`]);
    const [{ next }] = await this.manager.query<Array<{ next: number }>>(
      'SELECT COALESCE(MAX(version), 0) + 1 AS next FROM model_version WHERE category_id = $1 AND name = $2',
      [categoryId, name],
    );
    return Number(next);
  }

  /** Inserts a VALIDATING version; the row returned has its createdAt. */
  insertValidating(version: NewModelVersion): Promise<ModelVersionEntity> {
    return this.repository.save(
      this.repository.create({
        ...version,
        status: ModelStatus.VALIDATING,
        failureCode: null,
        failureReason: null,
        metadata: null,
        inputWidth: null,
        inputHeight: null,
        mean: null,
        std: null,
        scoreStats: null,
        mapStats: null,
        imageScoreRule: null,
        proposedThreshold: null,
        isActive: false,
        activatedAt: null,
        validatedAt: null,
      }),
    );
  }

  /**
   * Records a validation's outcome, only while the row is still VALIDATING (a start-up that took
   * it for abandoned has the last word); false if it was not.
   */
  async finishValidation(id: string, outcome: ValidationOutcome): Promise<boolean> {
    const result = await this.repository
      .createQueryBuilder()
      .update(ModelVersionEntity)
      .set(outcome)
      .where('id = :id AND status = :status', { id, status: ModelStatus.VALIDATING })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /** Within a transaction: one activation per category at a time, until the transaction ends. */
  async lockActivation(categoryId: string): Promise<void> {
    await this.manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`model_version:activate:${categoryId}`]);
  }

  /** Deactivates the category's active version unless it is `keptId`. */
  async deactivateOthers(categoryId: string, keptId: string): Promise<void> {
    await this.manager.query(
      'UPDATE model_version SET is_active = false WHERE category_id = $1 AND is_active AND id <> $2',
      [categoryId, keptId],
    );
  }

  /** Marks a READY version active; false if it is gone or not READY. */
  async markActive(id: string): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE model_version SET is_active = true, activated_at = now() WHERE id = $1 AND status = 'READY' RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  async setThreshold(id: string, threshold: number): Promise<void> {
    await this.repository.update({ id }, { threshold });
  }

  /**
   * Versions left VALIDATING for longer than `minutes` (their process stopped mid-validation)
   * become FAILED; not those whose accuracy guard evaluation is QUEUED or RUNNING (the
   * evaluation jobs' recovery carries those on, and its end decides).
   */
  failValidationsOlderThan(minutes: number): Promise<Array<{ id: string; categoryId: string }>> {
    return queryRows<{ id: string; categoryId: string }>(
      this.manager,
      `UPDATE model_version
          SET status = 'FAILED', failure_code = 'VALIDATION_INTERRUPTED', validated_at = now(),
              failure_reason = 'validation was interrupted (the server stopped); register the file again'
        WHERE status = 'VALIDATING' AND created_at < now() - make_interval(mins => $1)
          AND NOT EXISTS (
                SELECT 1 FROM evaluation guard
                 WHERE guard.model_id = model_version.id AND guard.accuracy_guard_of IS NOT NULL
                   AND guard.status IN ('QUEUED', 'RUNNING'))
        RETURNING id, category_id AS "categoryId"`,
      [minutes],
    );
  }

  /** The newest READY version of that name in the category (the demo seed looks for its model). */
  findLatestReady(categoryId: string, name: string): Promise<ModelVersionEntity | null> {
    return this.repository.findOne({
      where: { categoryId, name, status: ModelStatus.READY },
      order: { version: 'DESC' },
    });
  }
}
