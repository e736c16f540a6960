import type { Logger } from 'pino';
import type { ImageEntity, ImageSplit } from '../db/entities/image.entity';
import type { Page, PageRequest } from '../db/pagination';
import type { Database, Repositories } from '../db/repositories';
import type { ImageFilter } from '../db/repositories/image.repository';
import { notFound } from '../errors';
import type { ObjectStore } from '../storage/object-store';
import { isUuid } from '../utils/ids';

export interface CategoryImageStats {
  counts: Array<{ split: ImageSplit; defectType: string | null; count: number }>;
}

/**
 * Physically removes what was marked deleted and is no longer needed, within the given
 * categories: images no snapshot lists, then categories left without images or snapshots,
 * then deleted datasets left without categories. Returns the object keys to remove once the
 * transaction has committed.
 */
export async function purgeDeleted(tx: Repositories, categoryIds: readonly string[]): Promise<string[]> {
  if (categoryIds.length === 0) return [];
  const keys = await tx.images.purgeDeleted(categoryIds);
  const datasetIds = await tx.categories.purgeDeleted(categoryIds);
  if (datasetIds.length > 0) await tx.datasets.purgeDeleted(datasetIds);
  return keys;
}

/**
 * Images: their rows and objects. Rows are written only after their objects are stored and
 * removed before their objects are, so no row ever points at a missing object; objects left
 * behind by a crash between the two steps are removed by the orphan sweep.
 */
export class ImageService {
  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly logger: Logger,
  ) {}

  /** Any image, also one deleted but kept for a snapshot. */
  async findById(id: string): Promise<ImageEntity | null> {
    return isUuid(id) ? this.db.images.findById(id) : null;
  }

  findLiveBySha256(categoryId: string, sha256: string): Promise<ImageEntity | null> {
    return this.db.images.findLiveBySha256(categoryId, sha256);
  }

  /** Live images of a category; with `snapshotId`, the images of that snapshot instead (deleted ones included). */
  list(filter: ImageFilter & { snapshotId?: string }, page: PageRequest): Promise<Page<ImageEntity>> {
    return this.db.images.page(filter, page);
  }

  /** Per category: live images by split and defect type, in one query for all the categories asked. */
  async statsByCategory(categoryIds: readonly string[]): Promise<Map<string, CategoryImageStats>> {
    const counts = await this.db.images.countLiveByCategory(categoryIds);
    const stats = new Map<string, CategoryImageStats>(categoryIds.map((id) => [id, { counts: [] }]));
    for (const { categoryId, ...count } of counts) stats.get(categoryId)?.counts.push(count);
    return stats;
  }

  /**
   * Deletes an image. One that a snapshot lists is only marked deleted (hidden from `images`,
   * still readable through the snapshot) until its last snapshot goes.
   */
  async delete(id: string): Promise<void> {
    if (!isUuid(id)) throw notFound('Image', id);
    const keys = await this.db.transaction(async (tx) => {
      const image = await tx.images.lockLive(id);
      if (!image) throw notFound('Image', id);
      await tx.images.markDeleted(id);
      return purgeDeleted(tx, [image.categoryId]);
    });
    await this.removeObjects(keys);
  }

  /** Best effort after a commit: what fails here is an orphan the periodic sweep removes. */
  async removeObjects(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.objectStore.delete([...keys]);
    } catch (error) {
      this.logger.warn({ err: error, count: keys.length }, 'could not delete objects; the orphan sweep will retry');
    }
  }

  presignedUrl(image: ImageEntity): Promise<string> {
    return this.objectStore.presignGet(image.objectKey);
  }

  presignedMaskUrl(image: ImageEntity): Promise<string | null> {
    return image.maskObjectKey ? this.objectStore.presignGet(image.maskObjectKey) : Promise.resolve(null);
  }
}
