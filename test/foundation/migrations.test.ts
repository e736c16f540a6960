import type { DataSource } from 'typeorm';
import { createMigratedDataSource } from '../support/resources';

let dataSource: DataSource;

beforeAll(async () => {
  dataSource = await createMigratedDataSource();
});

afterAll(async () => {
  await dataSource?.destroy();
});

test('the committed migrations produce exactly the schema the entities describe', async () => {
  // What `synchronize` would run now: empty when no entity change lacks its migration.
  const pending = await dataSource.driver.createSchemaBuilder().log();
  expect(pending.upQueries.map((query) => query.query)).toEqual([]);
});

test('every migration can be reverted', async () => {
  const applied: Array<{ name: string }> = await dataSource.query('SELECT name FROM schema_migrations');
  for (let index = 0; index < applied.length; index += 1) await dataSource.undoLastMigration({ transaction: 'each' });
  const tables: Array<{ table_name: string }> = await dataSource.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations'",
  );
  expect(tables).toEqual([]);
  await dataSource.runMigrations({ transaction: 'each' });
});
