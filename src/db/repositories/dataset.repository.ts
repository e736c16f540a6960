import type { EntityManager, Repository } from 'typeorm';
import { DatasetEntity } from '../entities/dataset.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../pagination';

export type NewDataset = Pick<DatasetEntity, 'name' | 'description' | 'createdBy'>;

/** The SQL of the dataset table. */
export class DatasetRepository {
  private readonly repository: Repository<DatasetEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(DatasetEntity);
  }

  /** Inserts a live dataset; a live one of the same name makes it fail with a unique violation. */
  insert(dataset: NewDataset): Promise<DatasetEntity> {
    return this.repository.save(this.repository.create({ ...dataset, deletedAt: null }));
  }

  findLive(id: string): Promise<DatasetEntity | null> {
    return this.repository
      .createQueryBuilder('dataset')
      .where('dataset.id = :id AND dataset.deletedAt IS NULL', { id })
      .getOne();
  }

  findLiveByName(name: string): Promise<DatasetEntity | null> {
    return this.repository
      .createQueryBuilder('dataset')
      .where('dataset.name = :name AND dataset.deletedAt IS NULL', { name })
      .getOne();
  }

  /** Within a transaction: the live dataset, locked against concurrent changes until the transaction ends. */
  lockLive(id: string): Promise<DatasetEntity | null> {
    return this.repository
      .createQueryBuilder('dataset')
      .setLock('pessimistic_write')
      .where('dataset.id = :id AND dataset.deletedAt IS NULL', { id })
      .getOne();
  }

  /** Live datasets, newest first. */
  pageOfLive(page: PageRequest): Promise<Page<DatasetEntity>> {
    const live = this.repository.createQueryBuilder('dataset').where('dataset.deletedAt IS NULL');
    return paginate(live, newestFirst<DatasetEntity>('dataset'), page);
  }

  async markDeleted(id: string): Promise<void> {
    await this.manager.query('UPDATE dataset SET deleted_at = now() WHERE id = $1', [id]);
  }

  /** Removes the dataset if it has no category at all (one that never had any). */
  async deleteIfWithoutCategories(id: string): Promise<void> {
    await this.manager.query(
      'DELETE FROM dataset WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM category WHERE dataset_id = $1)',
      [id],
    );
  }

  /** Removes those of the datasets that are marked deleted and have no category left. */
  async purgeDeleted(datasetIds: readonly string[]): Promise<void> {
    await this.manager.query(
      `DELETE FROM dataset
        WHERE id = ANY($1::uuid[]) AND deleted_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM category WHERE category.dataset_id = dataset.id)`,
      [[...datasetIds]],
    );
  }
}
