import type { EntityManager } from 'typeorm';

/** The SQL of the image table(s). */
export class ImageRepository {
  constructor(private readonly manager: EntityManager) {}
}
