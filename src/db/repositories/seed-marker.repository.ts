import type { EntityManager } from 'typeorm';

/** The SQL of the seed marker table(s). */
export class SeedMarkerRepository {
  constructor(private readonly manager: EntityManager) {}
}
