import type { EntityManager } from 'typeorm';

/** The SQL of the model table(s). */
export class ModelRepository {
  constructor(private readonly manager: EntityManager) {}
}
