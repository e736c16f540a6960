import type { EntityManager } from 'typeorm';

/** The SQL of the dataset table(s). */
export class DatasetRepository {
  constructor(private readonly manager: EntityManager) {}
}
