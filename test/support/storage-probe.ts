import pg from 'pg';
import { ObjectStore } from '../../src/storage/object-store';
import { testS3Settings } from './resources';
import type { TestServer } from './test-server';

/** Direct looks into what the server stored: rows in its database, objects in its bucket. */
export class StorageProbe {
  readonly store: ObjectStore;
  private readonly pool: pg.Pool;

  constructor(server: TestServer) {
    this.store = new ObjectStore(testS3Settings(server.bucket));
    this.pool = new pg.Pool({ connectionString: server.databaseUrl, max: 2 });
  }

  async count(sql: string, parameters: unknown[] = []): Promise<number> {
    const { rows } = await this.pool.query<{ count: string }>(sql, parameters);
    return Number(rows[0]?.count ?? 0);
  }

  query<T extends pg.QueryResultRow>(sql: string, parameters: unknown[] = []): Promise<pg.QueryResult<T>> {
    return this.pool.query<T>(sql, parameters);
  }

  async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const object of this.store.list(prefix)) keys.push(object.key);
    return keys.sort();
  }

  /** Every object under our own prefixes. */
  async storedKeys(): Promise<string[]> {
    return [...(await this.keys('uploads/')), ...(await this.keys('images/')), ...(await this.keys('masks/'))];
  }

  async close(): Promise<void> {
    this.store.destroy();
    await this.pool.end();
  }
}
