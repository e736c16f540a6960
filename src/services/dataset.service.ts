import type { DataSource, Repository } from 'typeorm';
import type { Principal } from '../auth/principal';
import { DatasetEntity } from '../db/entities/dataset.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../db/pagination';
import { conflict, notFound } from '../errors';
import { assertNoActiveImport, dropPendingUploads } from './category.service';
import { checkDatasetName, checkDescription } from '../domain/dataset-rules';
import { isUuid } from '../utils/ids';
import { postgresErrorCode, UNIQUE_VIOLATION } from '../db/sql';
import type { ImageService } from './image.service';

export class DatasetService {
  private readonly repository: Repository<DatasetEntity>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly images: ImageService,
  ) {
    this.repository = dataSource.getRepository(DatasetEntity);
  }

  async create(name: string, description: string | null | undefined, principal: Principal): Promise<DatasetEntity> {
    const row = this.repository.create({ name: checkDatasetName(name), description: checkDescription(description), createdBy: principal.apiKeyId, deletedAt: null });
    try {
      return await this.repository.save(row);
    } catch (error) {
      if (postgresErrorCode(error) === UNIQUE_VIOLATION) throw conflict(`a dataset named "${row.name}" already exists`, { argument: 'name' });
      throw error;
    }
  }

  async findLive(id: string): Promise<DatasetEntity | null> {
    if (!isUuid(id)) return null;
    return this.repository.createQueryBuilder('dataset').where('dataset.id = :id AND dataset.deletedAt IS NULL', { id }).getOne();
  }

  async requireLive(id: string): Promise<DatasetEntity> {
    const dataset = await this.findLive(id);
    if (!dataset) throw notFound('Dataset', id);
    return dataset;
  }

  list(page: PageRequest): Promise<Page<DatasetEntity>> {
    return paginate(this.repository.createQueryBuilder('dataset').where('dataset.deletedAt IS NULL'), newestFirst<DatasetEntity>('dataset'), page);
  }

  /** Deletes the dataset, its categories and images; what snapshots still list stays (hidden) until they go. */
  async delete(id: string): Promise<void> {
    if (!isUuid(id)) throw notFound('Dataset', id);
    const keys = await this.dataSource.transaction(async (manager) => {
      const dataset = await manager
        .getRepository(DatasetEntity)
        .createQueryBuilder('dataset')
        .setLock('pessimistic_write')
        .where('dataset.id = :id AND dataset.deletedAt IS NULL', { id })
        .getOne();
      if (!dataset) throw notFound('Dataset', id);
      await assertNoActiveImport(manager, id);
      const categories = await manager.query<Array<{ id: string }>>('SELECT id FROM category WHERE dataset_id = $1', [id]);
      const categoryIds = categories.map((category) => category.id);
      await manager.query('UPDATE image SET deleted_at = now() WHERE category_id = ANY($1::uuid[]) AND deleted_at IS NULL', [categoryIds]);
      await manager.query('UPDATE category SET deleted_at = now() WHERE dataset_id = $1 AND deleted_at IS NULL', [id]);
      await manager.query('UPDATE dataset SET deleted_at = now() WHERE id = $1', [id]);
      const uploadKeys = await dropPendingUploads(manager, categoryIds);
      const imageKeys = await this.images.purgeDeleted(manager, categoryIds);
      // A dataset that never had a category is not reached by the purge above.
      await manager.query('DELETE FROM dataset WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM category WHERE dataset_id = $1)', [id]);
      return [...uploadKeys, ...imageKeys];
    });
    await this.images.removeObjects(keys);
  }
}
