import type { Principal } from '../auth/principal';
import type { ImageEntity } from '../db/entities/image.entity';
import type { SnapshotEntity } from '../db/entities/snapshot.entity';
import type { Database } from '../db/repositories';
import { postgresErrorCode, UNIQUE_VIOLATION } from '../db/sql';
import { badInput, conflict, notFound } from '../errors';
import { isUuid } from '../utils/ids';
import { purgeDeleted, type ImageService } from './image.service';

/**
 * Snapshots: immutable, named lists of a category's images at one moment, so that an
 * evaluation or a model version can always be tied to the exact data it used.
 */
export class SnapshotService {
  constructor(
    private readonly db: Database,
    private readonly images: ImageService,
  ) {}

  async create(categoryId: string, name: string, principal: Principal): Promise<SnapshotEntity> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 100 || /[\p{Cc}]/u.test(trimmed))
      throw badInput('name must be 1 to 100 printable characters', { argument: 'name' });
    if (!isUuid(categoryId)) throw notFound('Category', categoryId);
    try {
      return await this.db.transaction(async (tx) => {
        const snapshotId = await tx.snapshots.insertIfCategoryLive(categoryId, trimmed, principal.apiKeyId);
        if (!snapshotId) throw notFound('Category', categoryId);
        await tx.snapshots.addLiveImagesOfCategory(snapshotId, categoryId);
        return tx.snapshots.get(snapshotId);
      });
    } catch (error) {
      if (postgresErrorCode(error) === UNIQUE_VIOLATION)
        throw conflict(`the category already has a snapshot named "${trimmed}"`, { argument: 'name' });
      throw error;
    }
  }

  async findById(id: string): Promise<SnapshotEntity | null> {
    return isUuid(id) ? this.db.snapshots.findById(id) : null;
  }

  /** Snapshots of categories, newest first (also of deleted categories: snapshots outlive them). */
  listByCategories(categoryIds: readonly string[]): Promise<SnapshotEntity[]> {
    const ids = categoryIds.filter(isUuid);
    if (ids.length === 0) return Promise.resolve([]);
    return this.db.snapshots.listOfCategories(ids);
  }

  /** Every image of a snapshot, deleted ones included, in a stable order (for evaluations). */
  listSnapshotImages(snapshotId: string): Promise<ImageEntity[]> {
    return this.db.images.listOfSnapshot(snapshotId);
  }

  /** Deletes the snapshot; images deleted meanwhile that no other snapshot lists go with it, rows and objects. */
  async delete(id: string): Promise<void> {
    if (!isUuid(id)) throw notFound('Snapshot', id);
    const keys = await this.db.transaction(async (tx) => {
      const categoryId = await tx.snapshots.delete(id);
      if (!categoryId) throw notFound('Snapshot', id);
      return purgeDeleted(tx, [categoryId]);
    });
    await this.images.removeObjects(keys);
  }
}
