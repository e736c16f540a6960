import { In, type EntityManager, type Repository } from 'typeorm';
import { SnapshotEntity } from '../entities/snapshot.entity';
import { queryRows } from '../sql';

/** The SQL of the snapshot and snapshot_image tables. */
export class SnapshotRepository {
  private readonly repository: Repository<SnapshotEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(SnapshotEntity);
  }

  /**
   * Inserts an empty snapshot of a live category; its id, or null if the category is gone. The
   * category row is share-locked until the transaction ends. A name the category already has is
   * a unique violation.
   */
  async insertIfCategoryLive(categoryId: string, name: string, createdBy: string | null): Promise<string | null> {
    const created = await this.manager.query<Array<{ id: string }>>(
      `INSERT INTO snapshot (category_id, name, image_count, created_by)
       SELECT category.id, $2, 0, $3 FROM category WHERE category.id = $1 AND category.deleted_at IS NULL FOR SHARE OF category
       RETURNING id`,
      [categoryId, name, createdBy],
    );
    return created[0]?.id ?? null;
  }

  /**
   * Lists every live image of the category in the snapshot, then sets its image count.
   * FOR SHARE: an image being deleted right now is either waited for and left out, or listed and kept.
   */
  async addLiveImagesOfCategory(snapshotId: string, categoryId: string): Promise<void> {
    await this.manager.query(
      `INSERT INTO snapshot_image (snapshot_id, image_id)
       SELECT $1, image.id FROM image WHERE image.category_id = $2 AND image.deleted_at IS NULL FOR SHARE OF image`,
      [snapshotId, categoryId],
    );
    await this.manager.query(
      'UPDATE snapshot SET image_count = (SELECT count(*) FROM snapshot_image WHERE snapshot_id = $1) WHERE id = $1',
      [snapshotId],
    );
  }

  findById(id: string): Promise<SnapshotEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /** A row known to exist (read back after a change). */
  get(id: string): Promise<SnapshotEntity> {
    return this.repository.findOneByOrFail({ id });
  }

  /** Snapshots of categories, newest first. */
  listOfCategories(categoryIds: readonly string[]): Promise<SnapshotEntity[]> {
    return this.repository.find({
      where: { categoryId: In([...categoryIds]) },
      order: { createdAt: 'DESC', id: 'DESC' },
    });
  }

  /** Deletes the snapshot (its list of images goes with it); returns its category's id, or null if there was no such snapshot. */
  async delete(id: string): Promise<string | null> {
    const deleted = await queryRows<{ category_id: string }>(
      this.manager,
      'DELETE FROM snapshot WHERE id = $1 RETURNING category_id',
      [id],
    );
    return deleted[0]?.category_id ?? null;
  }
}
