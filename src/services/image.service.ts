import type { Logger } from 'pino';
import type { DataSource, EntityManager, Repository } from 'typeorm';
import { ImageEntity, ImageSplit } from '../db/entities/image.entity';
import { SnapshotImageEntity } from '../db/entities/snapshot.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../db/pagination';
import { notFound } from '../errors';
import type { ObjectStore } from '../storage/object-store';
import { isUuid } from '../utils/ids';
import { queryRows } from '../db/sql';

export interface ImageFilter {
  categoryId: string;
  split?: ImageSplit | null;
  defectType?: string | null;
  /** true: only good images; false: only defective ones. */
  good?: boolean | null;
}

/** A new image row; its objects are already stored under the keys it names. */
export type NewImage = Pick<
  ImageEntity,
  'id' | 'categoryId' | 'split' | 'defectType' | 'width' | 'height' | 'channels' | 'format' | 'byteSize' | 'sha256' | 'objectKey' | 'maskObjectKey' | 'originalFilename' | 'uploadedBy' | 'importJobId'
>;

export type InsertOutcome = { kind: 'inserted'; image: ImageEntity } | { kind: 'duplicate'; existing: ImageEntity } | { kind: 'category-gone' };

export interface CategoryImageStats {
  counts: Array<{ split: ImageSplit; defectType: string | null; count: number }>;
}

/**
 * Images: their rows and objects. Rows are written only after their objects are stored and
 * removed before their objects are, so no row ever points at a missing object; objects left
 * behind by a crash between the two steps are removed by the orphan sweep.
 */
export class ImageService {
  private readonly repository: Repository<ImageEntity>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly objectStore: ObjectStore,
    private readonly logger: Logger,
  ) {
    this.repository = dataSource.getRepository(ImageEntity);
  }

  /** Any image, also one deleted but kept for a snapshot. */
  async findById(id: string): Promise<ImageEntity | null> {
    return isUuid(id) ? this.repository.findOneBy({ id }) : null;
  }

  findLiveBySha256(categoryId: string, sha256: string, manager: EntityManager = this.dataSource.manager): Promise<ImageEntity | null> {
    return manager
      .getRepository(ImageEntity)
      .createQueryBuilder('image')
      .where('image.categoryId = :categoryId AND image.sha256 = :sha256 AND image.deletedAt IS NULL', { categoryId, sha256 })
      .getOne();
  }

  /** Live images of a category; with `snapshotId`, the images of that snapshot instead (deleted ones included). */
  list(filter: ImageFilter & { snapshotId?: string }, page: PageRequest): Promise<Page<ImageEntity>> {
    const query = this.repository.createQueryBuilder('image');
    if (filter.snapshotId) {
      query.innerJoin(SnapshotImageEntity, 'member', 'member.imageId = image.id AND member.snapshotId = :snapshotId', { snapshotId: filter.snapshotId });
    } else {
      query.where('image.categoryId = :categoryId AND image.deletedAt IS NULL', { categoryId: filter.categoryId });
    }
    if (filter.split) query.andWhere('image.split = :split', { split: filter.split });
    if (filter.defectType) query.andWhere('image.defectType = :defectType', { defectType: filter.defectType });
    if (filter.good === true) query.andWhere('image.defectType IS NULL');
    if (filter.good === false) query.andWhere('image.defectType IS NOT NULL');
    return paginate(query, newestFirst<ImageEntity>('image'), page);
  }

  /** Per category: live images by split and defect type, in one query for all the categories asked. */
  async statsByCategory(categoryIds: readonly string[]): Promise<Map<string, CategoryImageStats>> {
    const rows = await this.dataSource.query<Array<{ category_id: string; split: ImageSplit; defect_type: string | null; count: string }>>(
      `SELECT category_id, split, defect_type, count(*) AS count
         FROM image
        WHERE category_id = ANY($1::uuid[]) AND deleted_at IS NULL
        GROUP BY category_id, split, defect_type`,
      [categoryIds],
    );
    const stats = new Map<string, CategoryImageStats>(categoryIds.map((id) => [id, { counts: [] }]));
    for (const row of rows) stats.get(row.category_id)?.counts.push({ split: row.split, defectType: row.defect_type, count: Number(row.count) });
    return stats;
  }

  /**
   * Inserts the row unless the category is gone (deleted meanwhile) or already holds these
   * bytes. The category row is share-locked, so a concurrent deleteCategory either waits
   * for this insert or makes it see the category as deleted.
   */
  async insert(manager: EntityManager, image: NewImage): Promise<InsertOutcome> {
    const inserted = await manager.query<Array<{ id: string }>>(
      `INSERT INTO image (id, category_id, split, defect_type, width, height, channels, format, byte_size, sha256,
                          object_key, mask_object_key, original_filename, uploaded_by, import_job_id)
       SELECT $1, category.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15
         FROM category
        WHERE category.id = $2 AND category.deleted_at IS NULL
          FOR SHARE OF category
       ON CONFLICT (category_id, sha256) WHERE deleted_at IS NULL DO NOTHING
       RETURNING id`,
      [
        image.id,
        image.categoryId,
        image.split,
        image.defectType,
        image.width,
        image.height,
        image.channels,
        image.format,
        image.byteSize,
        image.sha256,
        image.objectKey,
        image.maskObjectKey,
        image.originalFilename,
        image.uploadedBy,
        image.importJobId,
      ],
    );
    if (inserted.length === 1) {
      const row = await manager.getRepository(ImageEntity).findOneByOrFail({ id: image.id });
      return { kind: 'inserted', image: row };
    }
    const existing = await this.findLiveBySha256(image.categoryId, image.sha256, manager);
    return existing ? { kind: 'duplicate', existing } : { kind: 'category-gone' };
  }

  /**
   * Deletes an image. One that a snapshot lists is only marked deleted (hidden from `images`,
   * still readable through the snapshot) until its last snapshot goes.
   */
  async delete(id: string): Promise<void> {
    if (!isUuid(id)) throw notFound('Image', id);
    const keys = await this.dataSource.transaction(async (manager) => {
      const image = await manager
        .getRepository(ImageEntity)
        .createQueryBuilder('image')
        .setLock('pessimistic_write')
        .where('image.id = :id AND image.deletedAt IS NULL', { id })
        .getOne();
      if (!image) throw notFound('Image', id);
      await manager.query('UPDATE image SET deleted_at = now() WHERE id = $1', [id]);
      return this.purgeDeleted(manager, [image.categoryId]);
    });
    await this.removeObjects(keys);
  }

  /**
   * Physically removes what was marked deleted and is no longer needed, within the given
   * categories: images no snapshot lists, then categories left without images or snapshots,
   * then deleted datasets left without categories. Returns the object keys to remove once the
   * transaction has committed.
   */
  async purgeDeleted(manager: EntityManager, categoryIds: readonly string[]): Promise<string[]> {
    if (categoryIds.length === 0) return [];
    const images = await queryRows<{ object_key: string; mask_object_key: string | null }>(
      manager,
      `DELETE FROM image
        WHERE category_id = ANY($1::uuid[]) AND deleted_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM snapshot_image WHERE snapshot_image.image_id = image.id)
       RETURNING object_key, mask_object_key`,
      [categoryIds],
    );
    const categories = await queryRows<{ dataset_id: string }>(
      manager,
      `DELETE FROM category
        WHERE id = ANY($1::uuid[]) AND deleted_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM image WHERE image.category_id = category.id)
          AND NOT EXISTS (SELECT 1 FROM snapshot WHERE snapshot.category_id = category.id)
       RETURNING dataset_id`,
      [categoryIds],
    );
    if (categories.length > 0) {
      await manager.query(
        `DELETE FROM dataset
          WHERE id = ANY($1::uuid[]) AND deleted_at IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM category WHERE category.dataset_id = dataset.id)`,
        [[...new Set(categories.map((row) => row.dataset_id))]],
      );
    }
    return images.flatMap((row) => (row.mask_object_key ? [row.object_key, row.mask_object_key] : [row.object_key]));
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
