import type { Principal } from '../auth/principal';
import type { CategoryEntity } from '../db/entities/category.entity';
import type { Database, Repositories } from '../db/repositories';
import { postgresErrorCode, UNIQUE_VIOLATION } from '../db/sql';
import { checkCategoryName } from '../domain/dataset-rules';
import { conflict, notFound } from '../errors';
import { objectKeys } from '../storage/object-keys';
import { isUuid } from '../utils/ids';
import { purgeDeleted, type ImageService } from './image.service';

/** Refuses to delete while an import may still add images to the dataset. */
export async function assertNoActiveImport(tx: Repositories, datasetId: string): Promise<void> {
  const importJobId = await tx.importJobs.findActiveIdOfDataset(datasetId);
  if (importJobId)
    throw conflict('an import into this dataset is still queued or running; delete after it has finished', {
      importJobId,
    });
}

/** Removes the pending uploads of categories; returns their object keys. */
export async function dropPendingUploads(tx: Repositories, categoryIds: readonly string[]): Promise<string[]> {
  if (categoryIds.length === 0) return [];
  const uploadIds = await tx.imageUploads.deleteOfCategories(categoryIds);
  return uploadIds.flatMap((id) => [objectKeys.upload(id, 'file'), objectKeys.upload(id, 'mask')]);
}

export class CategoryService {
  constructor(
    private readonly db: Database,
    private readonly images: ImageService,
  ) {}

  async create(datasetId: string, name: string, principal: Principal): Promise<CategoryEntity> {
    const checkedName = checkCategoryName(name);
    if (!isUuid(datasetId)) throw notFound('Dataset', datasetId);
    try {
      return await this.db.transaction(async (tx) => {
        const created = await tx.categories.insertIfDatasetLive(datasetId, checkedName, principal.apiKeyId, 'fail');
        if (!created) throw notFound('Dataset', datasetId);
        return created;
      });
    } catch (error) {
      if (postgresErrorCode(error) === UNIQUE_VIOLATION)
        throw conflict(`the dataset already has a category named "${checkedName}"`, { argument: 'name' });
      throw error;
    }
  }

  /**
   * The live category of that name, created if missing (imports). null if the dataset is gone.
   * The dataset row is share-locked, so a concurrent deleteDataset cannot miss the new category.
   */
  async findOrCreate(datasetId: string, name: string, createdBy: string | null): Promise<CategoryEntity | null> {
    return this.db.transaction(async (tx) => {
      const created = await tx.categories.insertIfDatasetLive(datasetId, name, createdBy, 'skip');
      return created ?? tx.categories.findLiveByName(datasetId, name);
    });
  }

  /** A live category. */
  async findLive(id: string): Promise<CategoryEntity | null> {
    if (!isUuid(id)) return null;
    return this.db.categories.findLive(id);
  }

  async requireLive(id: string): Promise<CategoryEntity> {
    const category = await this.findLive(id);
    if (!category) throw notFound('Category', id);
    return category;
  }

  /** Live categories of the given datasets, by name. */
  listByDatasets(datasetIds: readonly string[]): Promise<CategoryEntity[]> {
    return this.db.categories.listLiveOfDatasets(datasetIds);
  }

  /** Deletes the category with its images; images a snapshot lists stay (hidden) until that snapshot goes. */
  async delete(id: string): Promise<void> {
    if (!isUuid(id)) throw notFound('Category', id);
    const keys = await this.db.transaction(async (tx) => {
      const category = await tx.categories.lockLive(id);
      if (!category) throw notFound('Category', id);
      await assertNoActiveImport(tx, category.datasetId);
      await tx.images.markDeletedInCategories([id]);
      await tx.categories.markDeleted(id);
      const uploadKeys = await dropPendingUploads(tx, [id]);
      return [...uploadKeys, ...(await purgeDeleted(tx, [id]))];
    });
    await this.images.removeObjects(keys);
  }
}
