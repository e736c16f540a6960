// Starts the real service (compiled dist/src/main.js) as a child process on a random
// port, with its own database and bucket, so tests talk to it only over HTTP and
// websockets, as a frontend would.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { createTestDatabase, testS3Settings, uniqueName } from './resources';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const START_TIMEOUT_MS = 90_000;

export interface TestServer {
  url: string;
  wsUrl: string;
  baseUrl: string;
  adminKey: string;
  databaseUrl: string;
  bucket: string;
  env: Record<string, string>;
  child: ChildProcess;
  output(): string;
  /** Sends SIGTERM and resolves when the process has exited. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; elapsedMs: number }>;
}

export interface TestServerOptions {
  env?: Record<string, string | undefined>;
  /** Reuse an existing database (e.g. to restart a server on the same data). */
  databaseUrl?: string;
  bucket?: string;
  adminKey?: string;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const databaseUrl = options.databaseUrl ?? (await createTestDatabase());
  const s3 = testS3Settings(options.bucket ?? uniqueName('srv-'));
  const adminKey = options.adminKey ?? `test-admin-${randomBytes(24).toString('hex')}`;
  const env: Record<string, string> = {
    ...baseServerEnv(),
    DATA_DIR: path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('data-')),
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: s3.endpoint ?? '',
    S3_BUCKET: s3.bucket,
    AWS_ACCESS_KEY_ID: s3.credentials?.accessKeyId ?? '',
    AWS_SECRET_ACCESS_KEY: s3.credentials?.secretAccessKey ?? '',
    ADMIN_API_KEY: adminKey,
  };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return spawnServer(env, { adminKey, databaseUrl, bucket: s3.bucket });
}

/** What every test server's environment starts with: a test process on a random port of 127.0.0.1. */
export function baseServerEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
  };
}

/** The environment of `npm start` with nothing configured: embedded PostgreSQL and S3 under `dataDir`. */
export async function embeddedServerEnv(dataDir: string): Promise<Record<string, string>> {
  return {
    ...baseServerEnv(),
    DATA_DIR: dataDir,
    EMBEDDED_POSTGRES_PORT: String(await freePort()),
    EMBEDDED_S3_PORT: String(await freePort()),
  };
}

/** A TCP port that is free on 127.0.0.1 right now (for PORT, EMBEDDED_POSTGRES_PORT, EMBEDDED_S3_PORT). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface ProbeAnswer {
  status: number;
  body: { ready?: boolean; status?: string; checks?: Array<{ name: string; ok: boolean; reason?: string }> };
  text: string;
}

/** One GET of the server's readiness or liveness route. */
export async function probeRoute(server: TestServer, route: '/readyz' | '/healthz'): Promise<ProbeAnswer> {
  const response = await fetch(`${server.baseUrl}${route}`);
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as ProbeAnswer['body'], text };
}

/** Servers still running when this test process exits (e.g. jest force-kills a worker) are killed too. */
const runningChildren = new Set<ChildProcess>();
function killRunningChildren(): void {
  for (const child of runningChildren) child.kill('SIGKILL');
}
process.once('exit', killRunningChildren);
process.once('SIGTERM', () => {
  killRunningChildren();
  process.exit(143);
});

export async function spawnServer(
  env: Record<string, string>,
  known: { adminKey: string; databaseUrl: string; bucket: string },
): Promise<TestServer> {
  const child = spawn(process.execPath, [MAIN], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  runningChildren.add(child);
  child.once('exit', () => runningChildren.delete(child));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start within ${START_TIMEOUT_MS} ms:\n${output}`)),
      START_TIMEOUT_MS,
    );
    const onData = (): void => {
      const match = /^GraphQL: (\S+)$/m.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (code ${code}, signal ${signal}) before it was ready:\n${output}`));
    });
  });

  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    baseUrl: url.replace(/\/graphql$/, ''),
    adminKey: known.adminKey,
    databaseUrl: known.databaseUrl,
    bucket: known.bucket,
    env,
    child,
    output: () => output,
    async stop() {
      const started = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const result = await exited;
      return { ...result, elapsedMs: Date.now() - started };
    },
  };
}
