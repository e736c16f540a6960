import type { EntityManager, Repository } from 'typeorm';
import { SeedMarkerEntity } from '../entities/seed-marker.entity';

/** The SQL of the seed_marker table, and the lock that makes seeding happen once. */
export class SeedMarkerRepository {
  private readonly repository: Repository<SeedMarkerEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(SeedMarkerEntity);
  }

  exists(name: string): Promise<boolean> {
    return this.repository.existsBy({ name });
  }

  async insert(name: string, details: Record<string, string>): Promise<void> {
    await this.repository.insert({ name, details });
  }

  /**
   * Runs `work` holding the advisory lock `seed:<name>`, on a connection of its own (a session
   * lock: seeding takes several transactions), so replicas starting together seed once.
   */
  async whileLocked<T>(name: string, work: () => Promise<T>): Promise<T> {
    const key = `seed:${name}`;
    const runner = this.manager.connection.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('SELECT pg_advisory_lock(hashtext($1))', [key]);
      return await work();
    } finally {
      await runner.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch(() => undefined);
      await runner.release();
    }
  }
}
