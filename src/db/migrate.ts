import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';

const MIGRATION_LOCK = 'inspection:migrations';

/**
 * Applies pending migrations under a session-level advisory lock, so replicas that
 * start together migrate one after the other instead of racing.
 */
export async function runMigrations(dataSource: DataSource, logger: Logger): Promise<void> {
  const lockRunner = dataSource.createQueryRunner();
  await lockRunner.connect();
  try {
    await lockRunner.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    if (applied.length)
      logger.info({ migrations: applied.map((migration) => migration.name) }, 'applied database migrations');
  } finally {
    await lockRunner.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK]).catch(() => undefined);
    await lockRunner.release();
  }
}
