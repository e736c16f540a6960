import type { DataSource, EntityManager, Repository } from 'typeorm';
import type { Principal } from '../auth/principal';
import { CategoryEntity } from '../db/entities/category.entity';
import { conflict, notFound } from '../errors';
import { objectKeys } from '../storage/object-keys';
import { checkCategoryName } from '../domain/dataset-rules';
import { isUuid } from '../utils/ids';
import { postgresErrorCode, queryRows, UNIQUE_VIOLATION } from '../db/sql';
import type { ImageService } from './image.service';

/** Refuses to delete while an import may still add images to the dataset. */
export async function assertNoActiveImport(manager: EntityManager, datasetId: string): Promise<void> {
  const active = await manager.query<Array<{ id: string }>>(
    `SELECT id FROM import_job WHERE dataset_id = $1 AND status IN ('QUEUED', 'RUNNING') LIMIT 1`,
    [datasetId],
  );
  if (active.length > 0) {
    throw conflict('an import into this dataset is still queued or running; delete after it has finished', { importJobId: active[0]?.id });
  }
}

/** Removes the pending uploads of categories; returns their object keys. */
export async function dropPendingUploads(manager: EntityManager, categoryIds: readonly string[]): Promise<string[]> {
  if (categoryIds.length === 0) return [];
  const uploads = await queryRows<{ id: string }>(manager, 'DELETE FROM image_upload WHERE category_id = ANY($1::uuid[]) RETURNING id', [categoryIds]);
  return uploads.flatMap(({ id }) => [objectKeys.upload(id, 'file'), objectKeys.upload(id, 'mask')]);
}

export class CategoryService {
  private readonly repository: Repository<CategoryEntity>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly images: ImageService,
  ) {
    this.repository = dataSource.getRepository(CategoryEntity);
  }

  async create(datasetId: string, name: string, principal: Principal): Promise<CategoryEntity> {
    const checkedName = checkCategoryName(name);
    if (!isUuid(datasetId)) throw notFound('Dataset', datasetId);
    try {
      return await this.dataSource.transaction(async (manager) => {
        const created = await this.insertIfDatasetLive(manager, datasetId, checkedName, principal.apiKeyId, false);
        if (!created) throw notFound('Dataset', datasetId);
        return created;
      });
    } catch (error) {
      if (postgresErrorCode(error) === UNIQUE_VIOLATION) throw conflict(`the dataset already has a category named "${checkedName}"`, { argument: 'name' });
      throw error;
    }
  }

  /**
   * The live category of that name, created if missing (imports). null if the dataset is gone.
   * The dataset row is share-locked, so a concurrent deleteDataset cannot miss the new category.
   */
  async findOrCreate(datasetId: string, name: string, createdBy: string | null): Promise<CategoryEntity | null> {
    return this.dataSource.transaction(async (manager) => {
      const created = await this.insertIfDatasetLive(manager, datasetId, name, createdBy, true);
      if (created) return created;
      return manager
        .getRepository(CategoryEntity)
        .createQueryBuilder('category')
        .innerJoin('category.dataset', 'dataset', 'dataset.deletedAt IS NULL')
        .where('category.datasetId = :datasetId AND category.name = :name AND category.deletedAt IS NULL', { datasetId, name })
        .getOne();
    });
  }

  private async insertIfDatasetLive(manager: EntityManager, datasetId: string, name: string, createdBy: string | null, ignoreExisting: boolean): Promise<CategoryEntity | null> {
    const rows = await manager.query<Array<{ id: string }>>(
      `INSERT INTO category (dataset_id, name, created_by)
       SELECT dataset.id, $2, $3 FROM dataset WHERE dataset.id = $1 AND dataset.deleted_at IS NULL FOR SHARE OF dataset
       ${ignoreExisting ? 'ON CONFLICT (dataset_id, name) WHERE deleted_at IS NULL DO NOTHING' : ''}
       RETURNING id`,
      [datasetId, name, createdBy],
    );
    const id = rows[0]?.id;
    return id ? manager.getRepository(CategoryEntity).findOneByOrFail({ id }) : null;
  }

  /** A live category. */
  async findLive(id: string): Promise<CategoryEntity | null> {
    if (!isUuid(id)) return null;
    return this.repository
      .createQueryBuilder('category')
      .where('category.id = :id AND category.deletedAt IS NULL', { id })
      .getOne();
  }

  async requireLive(id: string): Promise<CategoryEntity> {
    const category = await this.findLive(id);
    if (!category) throw notFound('Category', id);
    return category;
  }

  /** Live categories of the given datasets, by name. */
  listByDatasets(datasetIds: readonly string[]): Promise<CategoryEntity[]> {
    return this.repository
      .createQueryBuilder('category')
      .where('category.datasetId IN (:...datasetIds) AND category.deletedAt IS NULL', { datasetIds: [...datasetIds] })
      .orderBy('category.name', 'ASC')
      .getMany();
  }

  /** Deletes the category with its images; images a snapshot lists stay (hidden) until that snapshot goes. */
  async delete(id: string): Promise<void> {
    if (!isUuid(id)) throw notFound('Category', id);
    const keys = await this.dataSource.transaction(async (manager) => {
      const category = await manager
        .getRepository(CategoryEntity)
        .createQueryBuilder('category')
        .setLock('pessimistic_write')
        .where('category.id = :id AND category.deletedAt IS NULL', { id })
        .getOne();
      if (!category) throw notFound('Category', id);
      await assertNoActiveImport(manager, category.datasetId);
      await manager.query('UPDATE image SET deleted_at = now() WHERE category_id = $1 AND deleted_at IS NULL', [id]);
      await manager.query('UPDATE category SET deleted_at = now() WHERE id = $1', [id]);
      const uploadKeys = await dropPendingUploads(manager, [id]);
      return [...uploadKeys, ...(await this.images.purgeDeleted(manager, [id]))];
    });
    await this.images.removeObjects(keys);
  }
}
