import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';

/** The SQL of the service_secret table: secrets the replicas share, created by whichever needs one first. */
export class ServiceSecretRepository {
  constructor(private readonly manager: EntityManager) {}

  /** The secret stored under `name`; `candidate` becomes it if there is none yet (first writer wins). */
  async getOrCreate(name: string, candidate: Buffer): Promise<Buffer> {
    await queryRows(
      this.manager,
      'INSERT INTO service_secret (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
      [name, candidate],
    );
    const [row] = await queryRows<{ secret: Buffer }>(
      this.manager,
      'SELECT secret FROM service_secret WHERE name = $1',
      [name],
    );
    if (!row) throw new Error(`service secret ${name} was neither found nor created`);
    return row.secret;
  }
}
