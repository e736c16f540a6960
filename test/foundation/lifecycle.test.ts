import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { GraphQLTestClient, SubscriptionRecorder } from '../support/graphql-client';
import { uniqueName } from '../support/resources';
import { embeddedServerEnv, spawnServer, startTestServer } from '../support/test-server';

const ROOT = path.resolve(__dirname, '..', '..');

test('SIGTERM closes HTTP, open websockets, pools and exits 0 within 10 s', async () => {
  const server = await startTestServer();
  const client = new GraphQLTestClient(server.url, server.adminKey).websocket();
  const events = new SubscriptionRecorder(client, 'subscription { apiKeyEvents { kind } }');
  // An open keep-alive HTTP connection too.
  await fetch(`${server.baseUrl}/healthz`, { headers: { connection: 'keep-alive' } });
  await new Promise((resolve) => setTimeout(resolve, 300));

  const result = await server.stop();
  expect(result).toMatchObject({ code: 0, signal: null });
  expect(result.elapsedMs).toBeLessThan(10_000);
  await events.waitForCompletion();
  expect(events.done).toBe(true);
  events.dispose();
  await client.dispose();
  expect(server.output()).not.toMatch(/Unhandled|uncaught|ECONNRESET/i);
});

test('with no DATABASE_URL or S3 settings it starts embedded PostgreSQL and S3, prints the admin key once, and stops them cleanly', async () => {
  const dataDir = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('embedded-'));
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const env = await embeddedServerEnv(dataDir);
  const first = await spawnServer(env, { adminKey: '', databaseUrl: '', bucket: 'inspection' });
  const adminKey = /^Admin API key: (\S+)$/m.exec(first.output())?.[1];
  expect(adminKey).toMatch(/^isk_/);
  const client = new GraphQLTestClient(first.url, adminKey);
  expect((await client.data<{ viewer: { role: string } }>('{ viewer { role } }')).viewer.role).toBe('ADMIN');
  const ready = (await (await fetch(`${first.baseUrl}/readyz`)).json()) as { ready: boolean };
  expect(ready.ready).toBe(true);
  const stopped = await first.stop();
  expect(stopped).toMatchObject({ code: 0 });
  expect(stopped.elapsedMs).toBeLessThan(10_000);

  // Second start on the same data: the key persists and no new one is printed.
  const second = await spawnServer(env, { adminKey: '', databaseUrl: '', bucket: 'inspection' });
  expect(second.output()).not.toMatch(/Admin API key/);
  expect(
    (await new GraphQLTestClient(second.url, adminKey).data<{ viewer: { role: string } }>('{ viewer { role } }')).viewer
      .role,
  ).toBe('ADMIN');
  expect((await second.stop()).code).toBe(0);
});

test('a bad setting stops the start with one clear line per problem', async () => {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/main.js')], {
    env: { PATH: process.env.PATH ?? '', PORT: 'eighty', S3_BUCKET: 'Not_A_Bucket', ADMIN_API_KEY: 'short' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code).toBe(1);
  expect(stderr).toMatch(/^Invalid configuration:/m);
  expect(stderr).toMatch(/PORT: .*\(got "eighty"\)/);
  expect(stderr).toMatch(/S3_BUCKET: must be a valid S3 bucket name/);
  expect(stderr).toMatch(/ADMIN_API_KEY: must be at least 24 characters/);
});
