// The embedded PostgreSQL is a process of its own: after a `kill -9` of the service it keeps
// running and holds its cluster's postmaster.pid, and the next start would fail. Before a start,
// whatever an earlier run left in the cluster is stopped. It relies on Linux's /proc: every
// PostgreSQL process works in its data directory, which /proc/<pid>/cwd shows. Elsewhere nothing
// is done and PostgreSQL's own lock-file check explains the failure.
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { EmbeddedServerError } from './errors';

/** Set in the environment of the PostgreSQL that the service starts: the pid of that service. */
export const OWNER_PID_ENV = 'INSPECTION_SERVICE_PID';

/** How long a fast shutdown (SIGINT) may take before what is left is killed. */
const SHUTDOWN_WAIT_MS = 10_000;
const KILL_WAIT_MS = 5_000;

/**
 * Stops the PostgreSQL, and its children, that an earlier run of the service left in `clusterDir`;
 * refuses when the service that started it still runs (two services on one DATA_DIR).
 */
export async function stopLeftoverServer(clusterDir: string, notice: (message: string) => void): Promise<void> {
  if (!existsSync('/proc/self/cwd') || !existsSync(clusterDir)) return;
  const dir = realpathSync(clusterDir);
  const pidFile = path.join(dir, 'postmaster.pid');
  const postmaster = readPostmasterPid(pidFile);

  if (postmaster !== undefined && cwdOf(postmaster) === dir) {
    const owner = environmentOf(postmaster)[OWNER_PID_ENV];
    // The service that started it is its parent while it lives; after a kill -9 init adopts it.
    if (owner !== undefined && Number(owner) === statOf(postmaster)?.parent) {
      throw new EmbeddedServerError(
        `${clusterDir} is in use by the embedded PostgreSQL (pid ${postmaster}) of a running service (pid ${owner}): stop that service or give this one another DATA_DIR`,
      );
    }
    notice(`stopping the embedded PostgreSQL (pid ${postmaster}) that an earlier run left running on ${clusterDir}`);
    signal(postmaster, 'SIGINT'); // fast shutdown: ends the sessions, writes a checkpoint
  } else if (postmaster !== undefined && isRunning(postmaster) && processesWorkingIn(dir).length === 0) {
    // After a reboot or in a new container the pid may be an unrelated process's, which PostgreSQL
    // would take for a server still running.
    rmSync(pidFile, { force: true });
    notice(`removed the stale ${pidFile}: its pid ${postmaster} is no PostgreSQL of this cluster`);
    return;
  }

  // Backends of a killed postmaster exit on their own shortly. A postmaster that stopped cleanly
  // removed its pid file; one that was killed left it, and counts as running until it is reaped.
  const finished = (): boolean =>
    processesWorkingIn(dir).length === 0 &&
    !(postmaster !== undefined && readPostmasterPid(pidFile) === postmaster && statOf(postmaster) !== undefined);
  if (await waitFor(finished, SHUTDOWN_WAIT_MS)) return;
  const left = processesWorkingIn(dir);
  if (left.length > 0) {
    notice(`killing what is left of an earlier embedded PostgreSQL on ${clusterDir} (pids ${left.join(', ')})`);
    for (const pid of left) signal(pid, 'SIGKILL');
  }
  if (!(await waitFor(finished, KILL_WAIT_MS))) {
    throw new EmbeddedServerError(
      `an earlier embedded PostgreSQL on ${clusterDir} did not go away (pids ${[postmaster, ...processesWorkingIn(dir)].join(', ')})`,
    );
  }
}

function readPostmasterPid(pidFile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processesWorkingIn(dir: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => pid !== process.pid && cwdOf(pid) === dir);
}

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

function environmentOf(pid: number): Record<string, string> {
  try {
    const entries = readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]);
    return Object.fromEntries(entries);
  } catch {
    return {};
  }
}

/** State (R, S, Z, …) and parent pid from /proc/<pid>/stat; undefined when there is no such process. */
function statOf(pid: number): { state: string; parent: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (command) state ppid …"; the command may hold spaces and parentheses.
    const [state = '', parent = ''] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, parent: Number(parent) };
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  const state = statOf(pid)?.state;
  return state !== undefined && state !== 'Z';
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}
