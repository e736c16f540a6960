import type { Principal } from '../auth/principal';
import type { DatasetEntity } from '../db/entities/dataset.entity';
import type { Page, PageRequest } from '../db/pagination';
import type { Database } from '../db/repositories';
import { postgresErrorCode, UNIQUE_VIOLATION } from '../db/sql';
import { checkDatasetName, checkDescription } from '../domain/dataset-rules';
import { conflict, notFound } from '../errors';
import { isUuid } from '../utils/ids';
import { assertNoActiveImport, dropPendingUploads } from './category.service';
import { purgeDeleted, type ImageService } from './image.service';

export class DatasetService {
  constructor(
    private readonly db: Database,
    private readonly images: ImageService,
  ) {}

  async create(name: string, description: string | null | undefined, principal: Principal): Promise<DatasetEntity> {
    const row = {
      name: checkDatasetName(name),
      description: checkDescription(description),
      createdBy: principal.apiKeyId,
    };
    try {
      return await this.db.datasets.insert(row);
    } catch (error) {
      if (postgresErrorCode(error) === UNIQUE_VIOLATION)
        throw conflict(`a dataset named "${row.name}" already exists`, { argument: 'name' });
      throw error;
    }
  }

  async findLive(id: string): Promise<DatasetEntity | null> {
    if (!isUuid(id)) return null;
    return this.db.datasets.findLive(id);
  }

  async requireLive(id: string): Promise<DatasetEntity> {
    const dataset = await this.findLive(id);
    if (!dataset) throw notFound('Dataset', id);
    return dataset;
  }

  list(page: PageRequest): Promise<Page<DatasetEntity>> {
    return this.db.datasets.pageOfLive(page);
  }

  /** Deletes the dataset, its categories and images; what snapshots still list stays (hidden) until they go. */
  async delete(id: string): Promise<void> {
    if (!isUuid(id)) throw notFound('Dataset', id);
    const keys = await this.db.transaction(async (tx) => {
      const dataset = await tx.datasets.lockLive(id);
      if (!dataset) throw notFound('Dataset', id);
      await assertNoActiveImport(tx, id);
      const categoryIds = await tx.categories.listIdsOfDataset(id);
      await tx.images.markDeletedInCategories(categoryIds);
      await tx.categories.markDeletedOfDataset(id);
      await tx.datasets.markDeleted(id);
      const uploadKeys = await dropPendingUploads(tx, categoryIds);
      const imageKeys = await purgeDeleted(tx, categoryIds);
      // A dataset that never had a category is not reached by the purge above.
      await tx.datasets.deleteIfWithoutCategories(id);
      return [...uploadKeys, ...imageKeys];
    });
    await this.images.removeObjects(keys);
  }
}
