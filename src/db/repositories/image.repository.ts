import type { EntityManager, Repository } from 'typeorm';
import { ImageEntity, type ImageSplit } from '../entities/image.entity';
import { SnapshotImageEntity } from '../entities/snapshot.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../pagination';
import { queryRows } from '../sql';

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
  | 'id'
  | 'categoryId'
  | 'split'
  | 'defectType'
  | 'width'
  | 'height'
  | 'channels'
  | 'format'
  | 'byteSize'
  | 'sha256'
  | 'objectKey'
  | 'maskObjectKey'
  | 'originalFilename'
  | 'uploadedBy'
  | 'importJobId'
>;

export type InsertOutcome =
  { kind: 'inserted'; image: ImageEntity } | { kind: 'duplicate'; existing: ImageEntity } | { kind: 'category-gone' };

/** Live images of one category counted by split and defect type. */
export interface ImageCount {
  categoryId: string;
  split: ImageSplit;
  defectType: string | null;
  count: number;
}

/** The tables whose rows own objects in the bucket, each under its own key prefix (see the orphan sweep). */
export type ObjectOwnerTable =
  'image_upload' | 'image' | 'model_upload' | 'model_version' | 'inspection_upload' | 'inspection' | 'evaluation';

/** The SQL of the image table (and of snapshot_image, through which snapshots list images). */
export class ImageRepository {
  private readonly repository: Repository<ImageEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(ImageEntity);
  }

  /** Any image, also one deleted but kept for a snapshot. */
  findById(id: string): Promise<ImageEntity | null> {
    return this.repository.findOneBy({ id });
  }

  findLiveBySha256(categoryId: string, sha256: string): Promise<ImageEntity | null> {
    return this.repository
      .createQueryBuilder('image')
      .where('image.categoryId = :categoryId AND image.sha256 = :sha256 AND image.deletedAt IS NULL', {
        categoryId,
        sha256,
      })
      .getOne();
  }

  /** Within a transaction: the live image, locked against concurrent changes until the transaction ends. */
  lockLive(id: string): Promise<ImageEntity | null> {
    return this.repository
      .createQueryBuilder('image')
      .setLock('pessimistic_write')
      .where('image.id = :id AND image.deletedAt IS NULL', { id })
      .getOne();
  }

  /** Live images of a category; with `snapshotId`, the images of that snapshot instead (deleted ones included). Newest first. */
  page(filter: ImageFilter & { snapshotId?: string }, page: PageRequest): Promise<Page<ImageEntity>> {
    const query = this.repository.createQueryBuilder('image');
    if (filter.snapshotId) {
      const membership = 'member.imageId = image.id AND member.snapshotId = :snapshotId';
      query.innerJoin(SnapshotImageEntity, 'member', membership, { snapshotId: filter.snapshotId });
    } else {
      query.where('image.categoryId = :categoryId AND image.deletedAt IS NULL', { categoryId: filter.categoryId });
    }
    if (filter.split) query.andWhere('image.split = :split', { split: filter.split });
    if (filter.defectType) query.andWhere('image.defectType = :defectType', { defectType: filter.defectType });
    if (filter.good === true) query.andWhere('image.defectType IS NULL');
    if (filter.good === false) query.andWhere('image.defectType IS NOT NULL');
    return paginate(query, newestFirst<ImageEntity>('image'), page);
  }

  /** Every image of a snapshot, deleted ones included, in a stable order (for evaluations). */
  listOfSnapshot(snapshotId: string): Promise<ImageEntity[]> {
    return this.repository
      .createQueryBuilder('image')
      .innerJoin(SnapshotImageEntity, 'member', 'member.imageId = image.id AND member.snapshotId = :snapshotId', {
        snapshotId,
      })
      .orderBy('image.split', 'ASC')
      .addOrderBy('image.defectType', 'ASC', 'NULLS FIRST')
      .addOrderBy('image.id', 'ASC')
      .getMany();
  }

  /** Live images by category, split and defect type, in one query for all the categories asked. */
  async countLiveByCategory(categoryIds: readonly string[]): Promise<ImageCount[]> {
    const rows = await this.manager.query<
      Array<{ category_id: string; split: ImageSplit; defect_type: string | null; count: string }>
    >(
      `SELECT category_id, split, defect_type, count(*) AS count
         FROM image
        WHERE category_id = ANY($1::uuid[]) AND deleted_at IS NULL
        GROUP BY category_id, split, defect_type`,
      [[...categoryIds]],
    );
    return rows.map((row) => ({
      categoryId: row.category_id,
      split: row.split,
      defectType: row.defect_type,
      count: Number(row.count),
    }));
  }

  /**
   * Inserts the row unless the category is gone (deleted meanwhile) or already holds these
   * bytes. The category row is share-locked, so a concurrent deleteCategory either waits
   * for this insert or makes it see the category as deleted.
   */
  async insertUnlessDuplicate(image: NewImage): Promise<InsertOutcome> {
    const inserted = await this.manager.query<Array<{ id: string }>>(
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
    if (inserted.length === 1)
      return { kind: 'inserted', image: await this.repository.findOneByOrFail({ id: image.id }) };
    const existing = await this.findLiveBySha256(image.categoryId, image.sha256);
    return existing ? { kind: 'duplicate', existing } : { kind: 'category-gone' };
  }

  async markDeleted(id: string): Promise<void> {
    await this.manager.query('UPDATE image SET deleted_at = now() WHERE id = $1', [id]);
  }

  async markDeletedInCategories(categoryIds: readonly string[]): Promise<void> {
    await this.manager.query(
      'UPDATE image SET deleted_at = now() WHERE category_id = ANY($1::uuid[]) AND deleted_at IS NULL',
      [[...categoryIds]],
    );
  }

  /**
   * Removes the images of the categories that are marked deleted and that no snapshot lists;
   * returns their object keys (image and mask), to remove once the transaction has committed.
   */
  async purgeDeleted(categoryIds: readonly string[]): Promise<string[]> {
    const rows = await queryRows<{ object_key: string; mask_object_key: string | null }>(
      this.manager,
      `DELETE FROM image
        WHERE category_id = ANY($1::uuid[]) AND deleted_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM snapshot_image WHERE snapshot_image.image_id = image.id)
       RETURNING object_key, mask_object_key`,
      [[...categoryIds]],
    );
    return rows.flatMap((row) => (row.mask_object_key ? [row.object_key, row.mask_object_key] : [row.object_key]));
  }

  /**
   * Which of `ids` have a row in `table`, one of the tables whose rows own objects (for the
   * orphan sweep, which asks about every such table).
   */
  async existingOwnerIds(table: ObjectOwnerTable, ids: readonly string[]): Promise<Set<string>> {
    const rows = await this.manager.query<Array<{ id: string }>>(`SELECT id FROM ${table} WHERE id = ANY($1::uuid[])`, [
      [...ids],
    ]);
    return new Set(rows.map((row) => row.id));
  }
}
