import type { EntityManager } from 'typeorm';

/** The SQL of the snapshot table(s). */
export class SnapshotRepository {
  constructor(private readonly manager: EntityManager) {}
}
