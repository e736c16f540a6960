import type { EntityManager, Repository } from 'typeorm';
import { CategoryEntity } from '../entities/category.entity';
import { queryRows } from '../sql';

/** The SQL of the category table. */
export class CategoryRepository {
  private readonly repository: Repository<CategoryEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(CategoryEntity);
  }

  /**
   * Inserts a category into a live dataset; null if the dataset is gone, or, with `ifNameTaken:
   * 'skip'`, if the dataset already has a live category of that name (with 'fail', that is a
   * unique violation). The dataset row is share-locked, so a concurrent deleteDataset cannot
   * miss the new category.
   */
  async insertIfDatasetLive(
    datasetId: string,
    name: string,
    createdBy: string | null,
    ifNameTaken: 'fail' | 'skip',
  ): Promise<CategoryEntity | null> {
    const rows = await this.manager.query<Array<{ id: string }>>(
      `INSERT INTO category (dataset_id, name, created_by)
       SELECT dataset.id, $2, $3 FROM dataset WHERE dataset.id = $1 AND dataset.deleted_at IS NULL FOR SHARE OF dataset
       ${ifNameTaken === 'skip' ? 'ON CONFLICT (dataset_id, name) WHERE deleted_at IS NULL DO NOTHING' : ''}
       RETURNING id`,
      [datasetId, name, createdBy],
    );
    const id = rows[0]?.id;
    return id ? this.repository.findOneByOrFail({ id }) : null;
  }

  /** The live category of that name in a live dataset. */
  findLiveByName(datasetId: string, name: string): Promise<CategoryEntity | null> {
    return this.repository
      .createQueryBuilder('category')
      .innerJoin('category.dataset', 'dataset', 'dataset.deletedAt IS NULL')
      .where('category.datasetId = :datasetId AND category.name = :name AND category.deletedAt IS NULL', {
        datasetId,
        name,
      })
      .getOne();
  }

  findLive(id: string): Promise<CategoryEntity | null> {
    return this.repository
      .createQueryBuilder('category')
      .where('category.id = :id AND category.deletedAt IS NULL', { id })
      .getOne();
  }

  /** Within a transaction: the live category, locked against concurrent changes until the transaction ends. */
  lockLive(id: string): Promise<CategoryEntity | null> {
    return this.repository
      .createQueryBuilder('category')
      .setLock('pessimistic_write')
      .where('category.id = :id AND category.deletedAt IS NULL', { id })
      .getOne();
  }

  /** Live categories of the given datasets, by name. */
  listLiveOfDatasets(datasetIds: readonly string[]): Promise<CategoryEntity[]> {
    return this.repository
      .createQueryBuilder('category')
      .where('category.datasetId IN (:...datasetIds) AND category.deletedAt IS NULL', { datasetIds: [...datasetIds] })
      .orderBy('category.name', 'ASC')
      .getMany();
  }

  /** Ids of every category of the dataset, deleted ones included. */
  async listIdsOfDataset(datasetId: string): Promise<string[]> {
    const rows = await this.manager.query<Array<{ id: string }>>('SELECT id FROM category WHERE dataset_id = $1', [
      datasetId,
    ]);
    return rows.map((row) => row.id);
  }

  async markDeleted(id: string): Promise<void> {
    await this.manager.query('UPDATE category SET deleted_at = now() WHERE id = $1', [id]);
  }

  async markDeletedOfDataset(datasetId: string): Promise<void> {
    await this.manager.query('UPDATE category SET deleted_at = now() WHERE dataset_id = $1 AND deleted_at IS NULL', [
      datasetId,
    ]);
  }

  /**
   * Removes those of the categories that are marked deleted and that no image or snapshot
   * refers to any more; returns the ids of the datasets they belonged to.
   */
  async purgeDeleted(categoryIds: readonly string[]): Promise<string[]> {
    const rows = await queryRows<{ dataset_id: string }>(
      this.manager,
      `DELETE FROM category
        WHERE id = ANY($1::uuid[]) AND deleted_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM image WHERE image.category_id = category.id)
          AND NOT EXISTS (SELECT 1 FROM snapshot WHERE snapshot.category_id = category.id)
       RETURNING dataset_id`,
      [[...categoryIds]],
    );
    return [...new Set(rows.map((row) => row.dataset_id))];
  }
}
