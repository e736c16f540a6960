import type { EntityManager } from 'typeorm';

/** The SQL of the category table(s). */
export class CategoryRepository {
  constructor(private readonly manager: EntityManager) {}
}
