import type { EntityManager } from 'typeorm';

/** The SQL of the inspection table(s). */
export class InspectionRepository {
  constructor(private readonly manager: EntityManager) {}
}
