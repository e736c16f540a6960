import type { EntityManager } from 'typeorm';

/** The SQL of the inspection upload table(s). */
export class InspectionUploadRepository {
  constructor(private readonly manager: EntityManager) {}
}
