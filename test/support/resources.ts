// Real resources for one test file: its own database in the test PostgreSQL and its
// own bucket in the test S3 server (both started by global-setup.mjs).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import 'reflect-metadata';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/db/data-source';
import { ObjectStore, type ObjectStoreOptions } from '../../src/storage/object-store';

export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

function adminDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url)
    throw new Error('TEST_DATABASE_URL is not set: run the tests through jest (global setup starts PostgreSQL)');
  return url;
}

/** Creates an empty database and returns its connection string. */
export async function createTestDatabase(): Promise<string> {
  const name = uniqueName('test_');
  const client = new pg.Client({ connectionString: adminDatabaseUrl() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fresh, migrated database behind the service's own data source. */
export async function createMigratedDataSource(): Promise<DataSource> {
  const dataSource = createDataSource({ url: await createTestDatabase(), poolSize: 5 });
  await dataSource.initialize();
  await dataSource.runMigrations({ transaction: 'each' });
  return dataSource;
}

export function testS3Settings(bucket = uniqueName('test-')): ObjectStoreOptions {
  const endpoint = process.env.TEST_S3_ENDPOINT;
  if (!endpoint)
    throw new Error('TEST_S3_ENDPOINT is not set: run the tests through jest (global setup starts s3rver)');
  return {
    endpoint,
    region: 'us-east-1',
    bucket,
    forcePathStyle: true,
    credentials: {
      accessKeyId: process.env.TEST_S3_ACCESS_KEY_ID ?? 'S3RVER',
      secretAccessKey: process.env.TEST_S3_SECRET_ACCESS_KEY ?? 'S3RVER',
    },
    defaultUrlExpirySeconds: 900,
  };
}

/** An object store on a new bucket of the test S3 server. */
export async function createTestObjectStore(options: Partial<ObjectStoreOptions> = {}): Promise<ObjectStore> {
  const store = new ObjectStore({ ...testS3Settings(), ...options });
  await store.ensureBucket();
  return store;
}
