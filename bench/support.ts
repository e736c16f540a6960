/** What the benches share: the project root, sums and percentiles, and child processes that announce they are ready. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** The repository root (the benches run compiled, from dist/bench/). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);

/** Nearest-rank percentile; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export interface Child {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `node <args>` in the project root and resolves once its stdout matches `ready`. */
export async function spawnAndWait(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<Child & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${args.join(' ')} did not start:\n${output.slice(-4000)}`)),
      300_000,
    );
    const onData = (): void => {
      const found = ready.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    };
    child.stdout?.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited:\n${output.slice(-4000)}`));
    });
  });
  return {
    child,
    match,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
