import { In, type DataSource, type Repository } from 'typeorm';
import type { Principal } from '../auth/principal';
import { ImageEntity } from '../db/entities/image.entity';
import { SnapshotEntity, SnapshotImageEntity } from '../db/entities/snapshot.entity';
import { badInput, conflict, notFound } from '../errors';
import { isUuid } from '../utils/ids';
import { postgresErrorCode, queryRows, UNIQUE_VIOLATION } from '../db/sql';
import type { ImageService } from './image.service';

/**
 * Snapshots: immutable, named lists of a category's images at one moment, so that an
 * evaluation or a model version can always be tied to the exact data it used.
 */
export class SnapshotService {
  private readonly repository: Repository<SnapshotEntity>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly images: ImageService,
  ) {
    this.repository = dataSource.getRepository(SnapshotEntity);
  }

  async create(categoryId: string, name: string, principal: Principal): Promise<SnapshotEntity> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 100 || /[\p{Cc}]/u.test(trimmed)) throw badInput('name must be 1 to 100 printable characters', { argument: 'name' });
    if (!isUuid(categoryId)) throw notFound('Category', categoryId);
    try {
      return await this.dataSource.transaction(async (manager) => {
        const created = await manager.query<Array<{ id: string }>>(
          `INSERT INTO snapshot (category_id, name, image_count, created_by)
           SELECT category.id, $2, 0, $3 FROM category WHERE category.id = $1 AND category.deleted_at IS NULL FOR SHARE OF category
           RETURNING id`,
          [categoryId, trimmed, principal.apiKeyId],
        );
        const snapshotId = created[0]?.id;
        if (!snapshotId) throw notFound('Category', categoryId);
        // FOR SHARE: an image being deleted right now is either waited for and left out, or listed and kept.
        await manager.query(
          `INSERT INTO snapshot_image (snapshot_id, image_id)
           SELECT $1, image.id FROM image WHERE image.category_id = $2 AND image.deleted_at IS NULL FOR SHARE OF image`,
          [snapshotId, categoryId],
        );
        await manager.query('UPDATE snapshot SET image_count = (SELECT count(*) FROM snapshot_image WHERE snapshot_id = $1) WHERE id = $1', [snapshotId]);
        return manager.getRepository(SnapshotEntity).findOneByOrFail({ id: snapshotId });
      });
    } catch (error) {
      if (postgresErrorCode(error) === UNIQUE_VIOLATION) throw conflict(`the category already has a snapshot named "${trimmed}"`, { argument: 'name' });
      throw error;
    }
  }

  async findById(id: string): Promise<SnapshotEntity | null> {
    return isUuid(id) ? this.repository.findOneBy({ id }) : null;
  }

  /** Snapshots of categories, newest first (also of deleted categories: snapshots outlive them). */
  listByCategories(categoryIds: readonly string[]): Promise<SnapshotEntity[]> {
    const ids = categoryIds.filter(isUuid);
    if (ids.length === 0) return Promise.resolve([]);
    return this.repository.find({ where: { categoryId: In(ids) }, order: { createdAt: 'DESC', id: 'DESC' } });
  }

  /** Every image of a snapshot, deleted ones included, in a stable order (for evaluations). */
  listSnapshotImages(snapshotId: string): Promise<ImageEntity[]> {
    return this.dataSource
      .getRepository(ImageEntity)
      .createQueryBuilder('image')
      .innerJoin(SnapshotImageEntity, 'member', 'member.imageId = image.id AND member.snapshotId = :snapshotId', { snapshotId })
      .orderBy('image.split', 'ASC')
      .addOrderBy('image.defectType', 'ASC', 'NULLS FIRST')
      .addOrderBy('image.id', 'ASC')
      .getMany();
  }

  /** Deletes the snapshot; images deleted meanwhile that no other snapshot lists go with it, rows and objects. */
  async delete(id: string): Promise<void> {
    if (!isUuid(id)) throw notFound('Snapshot', id);
    const keys = await this.dataSource.transaction(async (manager) => {
      const deleted = await queryRows<{ category_id: string }>(manager, 'DELETE FROM snapshot WHERE id = $1 RETURNING category_id', [id]);
      const categoryId = deleted[0]?.category_id;
      if (!categoryId) throw notFound('Snapshot', id);
      return this.images.purgeDeleted(manager, [categoryId]);
    });
    await this.images.removeObjects(keys);
  }
}
