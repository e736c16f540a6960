import path from 'node:path';
import { DataSource } from 'typeorm';
import { entities } from './entities';

/**
 * The one TypeORM data source. `synchronize` is never on: the schema comes only from
 * the reviewed migrations in migrations/ (compiled to dist/migrations).
 */
export function createDataSource(options: { url: string; poolSize: number }): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    entities,
    // .js in dist/, .ts when tests run the sources through ts-jest.
    migrations: [path.join(__dirname, '..', '..', 'migrations', '*.{js,ts}')],
    migrationsTableName: 'schema_migrations',
    // gen_random_uuid() is built into PostgreSQL 13+; no uuid-ossp extension needed.
    uuidExtension: 'pgcrypto',
    migrationsRun: false,
    synchronize: false,
    extra: { max: options.poolSize },
  });
}
