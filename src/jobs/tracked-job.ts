import type { Logger } from 'pino';
import type { Database, Repositories } from '../db/repositories';
import { JobInterruptedError, type JobContext, type JobQueue, type QueueDefinition } from './job-queue';

/** How long a delivery waits for its job's lock (held briefly by a recovery, or for long by a live runner). */
const LOCK_WAIT_MS = 10_000;

/** One attempt at a job, as the kind's steps see it. */
export interface TrackedRun {
  readonly id: string;
  /** Aborted when this process stops or `stop()` is called: end soon by throwing JobInterruptedError. */
  readonly signal: AbortSignal;
  /** No retry follows if this attempt fails unexpectedly: it ends the job FAILED instead. */
  readonly isLastAttempt: boolean;
}

/** What an error that ended `work` means for the job. */
export type WorkErrorMeaning<TReason> =
  /** The row is no longer this run's (cancelled, deleted meanwhile): end quietly, the row as it is. */
  | { kind: 'stopped' }
  /** The process is stopping: the row back to QUEUED, the job handed back to the queue. */
  | { kind: 'interrupted' }
  /** Retrying would not help: the job ends FAILED for this reason. */
  | { kind: 'failed'; reason: TReason }
  /** Anything else: retried (the row back to QUEUED) unless this was the last attempt, which ends the job FAILED. */
  | { kind: 'unexpected' };

export type RequeueCause = { cause: 'interrupted' } | { cause: 'error'; error: unknown };
export type FailureCause<TReason> = { cause: 'failed'; reason: TReason } | { cause: 'error'; error: unknown };

/**
 * One kind of tracked job: what is specific to its table and its work. `TState` is what one
 * run works with (the row, its progress...), created by `begin`; `TReason` says why a job
 * failed (a message, a problem...).
 */
export interface TrackedJobKind<TPayload extends object, TState, TReason> {
  /** The queue that delivers the jobs: its name and retry settings. */
  queue: Omit<QueueDefinition<TPayload>, 'handle'>;
  /** How logs name a job, e.g. 'import job'. */
  label: string;
  /** The log field that carries a job's id, e.g. 'importJobId'. */
  idField: string;
  /** The advisory lock of one job, e.g. `import:<id>`: one runner per job, across processes. */
  lockKey(id: string): string;
  payload(id: string): TPayload;
  idOf(payload: TPayload): string;
  /** Tells subscribers that the job's row changed. */
  publish(id: string): void;

  /** Ids of the rows marked RUNNING. */
  listRunning(): Promise<string[]>;
  /** In `tx`: RUNNING → QUEUED; false if the row was not RUNNING. */
  requeueIfRunning(tx: Repositories, id: string): Promise<boolean>;

  /**
   * Marks the row RUNNING (one attempt more) and returns what the run works with; null when
   * there is nothing to run (gone, finished, cancelled). Cleans up after itself when it
   * returns null or throws.
   */
  begin(run: TrackedRun): Promise<TState | null>;
  /** The work, up to and including the row's final success state. */
  work(state: TState, run: TrackedRun): Promise<void>;
  /**
   * What an error thrown by `work` means; null leaves it to the default: JobInterruptedError is
   * 'interrupted', anything else 'unexpected'.
   */
  classify?(error: unknown, state: TState, run: TrackedRun): WorkErrorMeaning<TReason> | null;
  /** The row back to QUEUED. After an error, its own failure is ignored (the error is what the queue sees). */
  requeue(state: TState, why: RequeueCause): Promise<void>;
  /** The row to FAILED: for a reason `classify` gave, or for an unexpected error on the last attempt. */
  fail(state: TState, why: FailureCause<TReason>): Promise<void>;
  /** After every run that `begin` started, whatever its outcome, before the lock is released. */
  end?(state: TState): Promise<void>;
}

const INTERRUPTED = { kind: 'interrupted' } as const;
const UNEXPECTED = { kind: 'unexpected' } as const;

/**
 * The lifecycle of background jobs whose state of record is a row of their own table (the
 * queue only delivers them), written once for every kind:
 *
 * - A delivery takes the job's advisory lock (waiting up to LOCK_WAIT_MS); without it, another
 *   process is running the job and that run finishes it. PostgreSQL drops the lock with a dead
 *   process, which is how a job whose runner crashed is told from one still running elsewhere.
 * - `begin` marks the row RUNNING, the change is published, then `work` runs with a signal that
 *   aborts when the process stops or `stop()` is called.
 * - An error ending `work` is classified (`classify`): 'stopped' ends quietly; 'interrupted'
 *   requeues the row and hands the job back to the queue (JobInterruptedError, which does not
 *   use up a retry); 'failed' fails the row; 'unexpected' requeues the row and rethrows, so the
 *   queue retries, except on the last attempt, which fails the row. Each such change of the
 *   row is published.
 * - `recoverAbandoned` requeues rows left RUNNING by a process that died (their lock is free),
 *   the job sent again in the same transaction; run it when workers start and periodically.
 * - `stop` aborts this process's runs and waits until each has handed its job back.
 */
export class TrackedJobs<TPayload extends object, TState, TReason> {
  /** Runs of this process, so that recovery leaves them alone and stop() can hand them back first. */
  private readonly running = new Map<string, { stopping: AbortController; done: Promise<void> }>();

  constructor(
    private readonly db: Database,
    private readonly jobQueue: JobQueue,
    private readonly logger: Logger,
    private readonly kind: TrackedJobKind<TPayload, TState, TReason>,
  ) {}

  queueDefinition(): QueueDefinition<TPayload> {
    return { ...this.kind.queue, handle: (payload, context) => this.deliver(this.kind.idOf(payload), context) };
  }

  /** Queues the job in the caller's transaction, so it is sent only if its row commits; wake() after the commit. */
  async enqueue(tx: Repositories, id: string): Promise<void> {
    await this.jobQueue.send(this.kind.queue.name, this.kind.payload(id), tx.manager);
  }

  /** Wakes this process's idle workers of the queue. */
  wake(): void {
    this.jobQueue.wake(this.kind.queue.name);
  }

  /** Queues again the jobs marked RUNNING whose runner is gone; returns how many. */
  async recoverAbandoned(): Promise<number> {
    let recovered = 0;
    for (const id of await this.kind.listRunning()) {
      if (this.running.has(id)) continue;
      const lock = await this.jobQueue.lock(this.kind.lockKey(id), 0);
      if (!lock) continue;
      try {
        const requeued = await this.db.transaction(async (tx) => {
          if (!(await this.kind.requeueIfRunning(tx, id))) return false;
          await this.enqueue(tx, id);
          return true;
        });
        if (requeued) {
          recovered += 1;
          this.logger.warn(
            { [this.kind.idField]: id },
            `${this.kind.label} was left running by a process that stopped; queued again`,
          );
          this.kind.publish(id);
        }
      } finally {
        await lock.release();
      }
    }
    if (recovered > 0) this.wake();
    return recovered;
  }

  /** Aborts this process's runs and waits until each has handed its job back (QUEUED). */
  async stop(): Promise<void> {
    const runs = [...this.running.values()];
    for (const run of runs) run.stopping.abort();
    await Promise.all(runs.map((run) => run.done));
  }

  private async deliver(id: string, context: JobContext): Promise<void> {
    const stopping = new AbortController();
    const run = this.run(id, context, stopping);
    this.running.set(id, {
      stopping,
      done: run.then(
        () => undefined,
        () => undefined,
      ),
    });
    try {
      await run;
    } finally {
      this.running.delete(id);
    }
  }

  private async run(id: string, context: JobContext, stopping: AbortController): Promise<void> {
    const lock = await this.jobQueue.lock(this.kind.lockKey(id), LOCK_WAIT_MS);
    // Another process is running it (a duplicate delivery): that run finishes the job.
    if (!lock) return;
    const onProcessStop = (): void => stopping.abort();
    context.signal.addEventListener('abort', onProcessStop);
    if (context.signal.aborted) stopping.abort();
    const run: TrackedRun = { id, signal: stopping.signal, isLastAttempt: context.isLastAttempt };
    try {
      const state = await this.kind.begin(run);
      if (state === null) return;
      this.kind.publish(id);
      try {
        await this.kind.work(state, run);
      } catch (error) {
        await this.settle(state, run, error);
      } finally {
        await this.kind.end?.(state);
      }
    } finally {
      context.signal.removeEventListener('abort', onProcessStop);
      await lock.release();
    }
  }

  /** What a run that `work` ended with an error leaves behind. Throws to hand the job back to the queue. */
  private async settle(state: TState, run: TrackedRun, error: unknown): Promise<void> {
    const meaning =
      this.kind.classify?.(error, state, run) ?? (error instanceof JobInterruptedError ? INTERRUPTED : UNEXPECTED);
    switch (meaning.kind) {
      case 'stopped':
        return;
      case 'interrupted':
        await this.kind.requeue(state, { cause: 'interrupted' });
        this.kind.publish(run.id);
        throw new JobInterruptedError();
      case 'failed':
        await this.kind.fail(state, { cause: 'failed', reason: meaning.reason });
        this.kind.publish(run.id);
        return;
      case 'unexpected':
        if (run.isLastAttempt) {
          await this.kind.fail(state, { cause: 'error', error });
          this.kind.publish(run.id);
          return;
        }
        try {
          await this.kind.requeue(state, { cause: 'error', error });
          this.kind.publish(run.id);
        } catch {
          // The error below is what the queue should see (and retry on).
        }
        throw error;
    }
  }
}
