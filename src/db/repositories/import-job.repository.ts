import type { EntityManager } from 'typeorm';

/** The SQL of the import job table(s). */
export class ImportJobRepository {
  constructor(private readonly manager: EntityManager) {}
}
