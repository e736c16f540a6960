import type { EntityManager, Repository } from 'typeorm';
import { ImageUploadEntity } from '../entities/image-upload.entity';
import { queryRows } from '../sql';

/**
 * The SQL of the image_upload table: pending presigned uploads of dataset images. The methods
 * are those PresignedUploads (src/services/presigned-upload.service.ts) works with, and what
 * category deletion and the orphan sweep need.
 */
export class ImageUploadRepository {
  private readonly repository: Repository<ImageUploadEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(ImageUploadEntity);
  }

  async insert(uploads: ReadonlyArray<Omit<ImageUploadEntity, 'createdAt'>>): Promise<void> {
    await this.repository.insert([...uploads]);
  }

  findById(id: string): Promise<ImageUploadEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /**
   * Removes the rows of uploads being consumed; returns the ids that were still there. Claiming
   * them in the transaction that inserts their images makes a second, concurrent confirm of them
   * find nothing.
   */
  async claim(ids: readonly string[]): Promise<string[]> {
    const sql = 'DELETE FROM image_upload WHERE id = ANY($1::uuid[]) RETURNING id';
    const rows = await queryRows<{ id: string }>(this.manager, sql, [[...ids]]);
    return rows.map((row) => row.id);
  }

  async delete(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.repository.delete([...ids]);
  }

  /** Removes the pending uploads of the categories; returns their ids. */
  async deleteOfCategories(categoryIds: readonly string[]): Promise<string[]> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      'DELETE FROM image_upload WHERE category_id = ANY($1::uuid[]) RETURNING id',
      [[...categoryIds]],
    );
    return rows.map((row) => row.id);
  }

  /** Uploads that expired more than `graceSeconds` ago, the oldest first, at most `limit`. */
  listExpired(limit: number, graceSeconds = 0): Promise<ImageUploadEntity[]> {
    return this.repository
      .createQueryBuilder('upload')
      .where('upload.expiresAt < now() - make_interval(secs => :graceSeconds)', { graceSeconds })
      .orderBy('upload.expiresAt')
      .limit(limit)
      .getMany();
  }
}
