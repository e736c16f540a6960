import type { EntityManager, Repository } from 'typeorm';
import { ModelUploadEntity } from '../entities/model-version.entity';
import { queryRows } from '../sql';

/**
 * The SQL of the model_upload table: pending presigned uploads of ONNX files. The methods are
 * those PresignedUploads (src/services/presigned-upload.service.ts) works with.
 */
export class ModelUploadRepository {
  private readonly repository: Repository<ModelUploadEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(ModelUploadEntity);
  }

  async insert(uploads: readonly ModelUploadEntity[]): Promise<void> {
    await this.repository.insert([...uploads]);
  }

  findById(id: string): Promise<ModelUploadEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /** Removes the rows of uploads being consumed; returns the ids that were still there. */
  async claim(ids: readonly string[]): Promise<string[]> {
    const sql = 'DELETE FROM model_upload WHERE id = ANY($1::uuid[]) RETURNING id';
    const rows = await queryRows<{ id: string }>(this.manager, sql, [[...ids]]);
    return rows.map((row) => row.id);
  }

  async delete(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.repository.delete([...ids]);
  }

  /** Uploads past their expiry, at most `limit`. */
  listExpired(limit: number): Promise<ModelUploadEntity[]> {
    return this.repository.createQueryBuilder('upload').where('upload.expiresAt < now()').limit(limit).getMany();
  }
}
