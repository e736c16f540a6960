import type { EntityManager } from 'typeorm';

/** The SQL of the image upload table(s). */
export class ImageUploadRepository {
  constructor(private readonly manager: EntityManager) {}
}
