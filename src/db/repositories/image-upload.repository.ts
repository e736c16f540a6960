import type { EntityManager, Repository } from 'typeorm';
import { ImageUploadEntity } from '../entities/image-upload.entity';
import { queryRows } from '../sql';

export type NewImageUpload = Omit<ImageUploadEntity, 'category' | 'createdAt'>;

/** The SQL of the image_upload table: pending presigned uploads of dataset images. */
export class ImageUploadRepository {
  private readonly repository: Repository<ImageUploadEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(ImageUploadEntity);
  }

  async insert(uploads: readonly NewImageUpload[]): Promise<void> {
    await this.repository.insert([...uploads]);
  }

  findById(id: string): Promise<ImageUploadEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /**
   * Removes the row of an upload being confirmed; false if it was gone already. Claiming it in
   * the transaction that inserts its image makes a second, concurrent confirm of it find nothing.
   */
  async claim(id: string): Promise<boolean> {
    const claimed = await queryRows<{ id: string }>(this.manager, 'DELETE FROM image_upload WHERE id = $1 RETURNING id', [id]);
    return claimed.length > 0;
  }

  async delete(id: string): Promise<void> {
    await this.repository.delete({ id });
  }

  async deleteMany(ids: readonly string[]): Promise<void> {
    await this.manager.query('DELETE FROM image_upload WHERE id = ANY($1::uuid[])', [[...ids]]);
  }

  /** Removes the pending uploads of the categories; returns their ids. */
  async deleteOfCategories(categoryIds: readonly string[]): Promise<string[]> {
    const rows = await queryRows<{ id: string }>(this.manager, 'DELETE FROM image_upload WHERE category_id = ANY($1::uuid[]) RETURNING id', [
      [...categoryIds],
    ]);
    return rows.map((row) => row.id);
  }

  /** Ids of uploads that expired more than `graceSeconds` ago, the oldest first, at most `limit`. */
  async listExpiredIds(graceSeconds: number, limit: number): Promise<string[]> {
    const rows = await this.manager.query<Array<{ id: string }>>(
      `SELECT id FROM image_upload WHERE expires_at < now() - make_interval(secs => $1) ORDER BY expires_at LIMIT ${Number(limit)}`,
      [graceSeconds],
    );
    return rows.map((row) => row.id);
  }
}
