// PostgreSQL refuses to run as root. As root, the embedded server runs as the system user
// `postgres`, which must be able to reach its binaries (inside node_modules) and its cluster
// (under DATA_DIR). A checkout or DATA_DIR in a directory other users cannot enter (a clone
// under /root, a `mktemp -d` DATA_DIR) would make the spawn fail with EACCES; what that user
// cannot reach is then kept under RUNTIME_DIR instead, and the log says so.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, lstat, mkdir, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { EmbeddedServerError, oneLine } from './errors';

const execFileAsync = promisify(execFile);

/** Where, as root, the copies of what the postgres user could not reach are kept. */
export const RUNTIME_DIR = '/var/lib/inspection-service';

export interface RunAs {
  uid: number;
  gid: number;
}

export type Notice = (message: string) => void;

/** The user to run PostgreSQL as: none (ourselves) unless we are root; then `postgres`, created if missing. */
export async function postgresUser(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookUp = async (): Promise<RunAs> => {
    const [uid, gid] = await Promise.all(
      ['-u', '-g'].map(async (flag) => Number.parseInt((await execFileAsync('id', [flag, 'postgres'])).stdout, 10)),
    );
    return { uid: uid as number, gid: gid as number };
  };
  try {
    return await lookUp();
  } catch {
    try {
      await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
      return await lookUp();
    } catch (error) {
      throw new EmbeddedServerError(
        `running as root, the embedded PostgreSQL needs a "postgres" user and it could not be created: ${oneLine(error)}`,
        { cause: error },
      );
    }
  }
}

/** Whether `user` can reach `target`: search permission on it and on every directory above it (as the kernel decides). */
async function canReach(user: RunAs, target: string): Promise<boolean> {
  try {
    await execFileAsync('/bin/sh', ['-c', 'test -x "$1"', 'sh', target], { uid: user.uid, gid: user.gid, cwd: '/' });
    return true;
  } catch {
    return false;
  }
}

export interface Binaries {
  postgres: string;
  initdb: string;
  /** The package's directory holding bin/, lib/ and share/. */
  nativeDir: string;
  /** e.g. `18.4.0-beta.17-linux-x64`. */
  version: string;
}

/** The binaries where `user` can run them: in place, or a copy under RUNTIME_DIR (made once per version). */
export async function reachableBinaries(binaries: Binaries, user: RunAs, notice: Notice): Promise<Binaries> {
  if (await canReach(user, binaries.postgres)) return binaries;
  const copy = path.join(RUNTIME_DIR, `postgresql-${binaries.version}`);
  const relocated = {
    ...binaries,
    nativeDir: copy,
    postgres: path.join(copy, path.relative(binaries.nativeDir, binaries.postgres)),
    initdb: path.join(copy, path.relative(binaries.nativeDir, binaries.initdb)),
  };
  if (!(await exists(copy))) {
    // Copied next to its final place and renamed: a start killed mid-copy leaves no half copy behind.
    const partial = `${copy}.partial-${process.pid}`;
    await mkdir(RUNTIME_DIR, { recursive: true, mode: 0o755 });
    await cp(binaries.nativeDir, partial, { recursive: true, verbatimSymlinks: true });
    await rename(partial, copy).catch(async (error: NodeJS.ErrnoException) => {
      await rm(partial, { recursive: true, force: true });
      // Another start made the same copy at the same time.
      if (error.code !== 'EEXIST' && error.code !== 'ENOTEMPTY') throw error;
    });
  }
  if (!(await canReach(user, relocated.postgres))) {
    throw new EmbeddedServerError(
      `the postgres user cannot run ${relocated.postgres}: make ${RUNTIME_DIR} and the directories above it enterable by other users`,
    );
  }
  notice(`the postgres user cannot enter ${binaries.nativeDir}: running PostgreSQL from a copy in ${copy}`);
  return relocated;
}

/**
 * The cluster directory for `dataDir` (DATA_DIR/postgres) where `user` can enter it: `dataDir` itself,
 * or, when the postgres user cannot enter DATA_DIR, a directory under RUNTIME_DIR that `dataDir`
 * becomes a symbolic link to (so DATA_DIR still shows where the data is).
 */
export async function reachableClusterDir(dataDir: string, user: RunAs, notice: Notice): Promise<string> {
  const clusterDir = await resolveLink(dataDir);
  const parent = path.dirname(clusterDir);
  if (await canReach(user, parent)) {
    if (clusterDir !== dataDir) notice(`the embedded PostgreSQL cluster is in ${clusterDir} (${dataDir} links there)`);
    return clusterDir;
  }
  const advice = `make ${parent} and the directories above it enterable by other users (chmod o+x), or move the cluster`;
  if (clusterDir !== dataDir) throw new EmbeddedServerError(`the postgres user cannot enter ${parent}: ${advice}`);
  if (await exists(path.join(dataDir, 'PG_VERSION'))) {
    throw new EmbeddedServerError(
      `the postgres user cannot enter ${parent}, which holds the cluster ${dataDir}: ${advice}`,
    );
  }
  // What an earlier start that failed here may have left: an empty directory (rmdir refuses anything else).
  if (await exists(dataDir)) await rmdir(dataDir);

  const relocated = path.join(RUNTIME_DIR, 'clusters', createHash('sha256').update(dataDir).digest('hex').slice(0, 16));
  await mkdir(path.dirname(relocated), { recursive: true, mode: 0o755 });
  await symlink(relocated, dataDir);
  notice(
    `the postgres user cannot enter ${parent}: the embedded PostgreSQL cluster is kept in ${relocated} (${dataDir} links there)`,
  );
  return relocated;
}

/** `dir`, or where it points when it is a symbolic link. */
export async function resolveLink(dir: string): Promise<string> {
  const target = await readlink(dir).catch(() => undefined);
  return target === undefined ? dir : path.resolve(path.dirname(dir), target);
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}
