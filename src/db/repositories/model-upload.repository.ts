import type { EntityManager } from 'typeorm';

/** The SQL of the model upload table(s). */
export class ModelUploadRepository {
  constructor(private readonly manager: EntityManager) {}
}
