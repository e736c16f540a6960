import pg from 'pg';
import PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import { ExclusiveLock } from './exclusive-lock';

/** What a handler learns about the delivery it is working on. */
export interface JobContext {
  /** Aborted when this process stops: return soon after (throw JobInterruptedError) and the job is queued again. */
  signal: AbortSignal;
  /** 0 on the first delivery, then 1, 2... after failures. */
  retryCount: number;
  /** No retry follows if this delivery fails: record the failure in the job's own table now. */
  isLastAttempt: boolean;
}

/**
 * A kind of background work. pg-boss only delivers it; each domain keeps the state of record
 * (status, progress, errors) in its own table, keyed by an id carried in the payload.
 */
export interface QueueDefinition<TPayload extends object> {
  /** pg-boss queue name: letters, digits, '_' and '-'. */
  name: string;
  /** Jobs of this queue one process works on at once. */
  concurrency: number;
  retryLimit: number;
  retryDelaySeconds: number;
  /** pg-boss fails (and retries) a delivery that runs longer than this. */
  expireInSeconds: number;
  handle(payload: TPayload, context: JobContext): Promise<void>;
}

/** Thrown by a handler that stopped because its process is stopping; the job is queued again, not failed. */
export class JobInterruptedError extends Error {
  override readonly name = 'JobInterruptedError';

  constructor() {
    super('the worker process is stopping; the job will be picked up again');
  }
}

/** Runs a statement on the caller's connection, so a job is queued in the same transaction as its row. */
export interface SqlExecutor {
  query(sql: string, parameters: unknown[]): Promise<unknown>;
}

export interface JobQueueOptions {
  databaseUrl: string;
  logger: Logger;
  /** How often idle workers poll; jobs sent from this process wake its workers at once. */
  pollingIntervalSeconds?: number;
  /** pg-boss's own connections. */
  poolSize?: number;
}

const SCHEMA = 'pgboss';

/**
 * A small generic job queue on pg-boss 10 (PostgreSQL-backed, so jobs survive restarts).
 * Domains define queues and handlers; the server (JOB_WORKERS_IN_PROCESS) or `npm run worker`
 * runs the workers. Stopping aborts running handlers, which hand their job back to the queue.
 */
export class JobQueue {
  private readonly definitions = new Map<string, QueueDefinition<object>>();
  private readonly workerIds = new Map<string, string[]>();
  private readonly running = new Set<{ controller: AbortController; done: Promise<void> }>();
  private workersStarted = false;
  private stopped = false;

  private constructor(
    private readonly boss: PgBoss,
    private readonly lockPool: pg.Pool,
    private readonly logger: Logger,
    private readonly pollingIntervalSeconds: number,
  ) {}

  static async start(options: JobQueueOptions): Promise<JobQueue> {
    const boss = new PgBoss({
      connectionString: options.databaseUrl,
      schema: SCHEMA,
      max: options.poolSize ?? 4,
      application_name: 'inspection-jobs',
      // Recurring work (sweeps) runs on timers of its own; no cron needed.
      schedule: false,
    });
    const logger = options.logger.child({ component: 'job-queue' });
    boss.on('error', (error) => logger.warn({ err: error }, 'job queue error'));
    await boss.start();
    const lockPool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 8,
      application_name: 'inspection-job-locks',
    });
    lockPool.on('error', (error) => logger.warn({ err: error }, 'idle job-lock connection failed'));
    return new JobQueue(boss, lockPool, logger, options.pollingIntervalSeconds ?? 2);
  }

  /**
   * Makes sure one process at a time works on a tracked job (the key names it, e.g.
   * `import:<id>`): held until released or until this process dies.
   */
  lock(key: string, waitMs: number): Promise<ExclusiveLock | null> {
    return ExclusiveLock.acquire(this.lockPool, key, waitMs);
  }

  /** Creates (or updates) the queue; call before sending to it or starting workers. */
  async define<TPayload extends object>(definition: QueueDefinition<TPayload>): Promise<void> {
    const settings = {
      name: definition.name,
      retryLimit: definition.retryLimit,
      retryDelay: definition.retryDelaySeconds,
      expireInSeconds: definition.expireInSeconds,
    };
    await this.boss.createQueue(definition.name, settings);
    await this.boss.updateQueue(definition.name, settings);
    this.definitions.set(definition.name, definition as unknown as QueueDefinition<object>);
    if (this.workersStarted) await this.startWorkersFor(definition.name);
  }

  /**
   * Queues a job. With `executor`, the job is inserted on that connection, so it commits or
   * rolls back with the caller's transaction.
   */
  async send(queue: string, payload: object, executor?: SqlExecutor): Promise<string> {
    const db = executor
      ? {
          executeSql: async (text: string, values: unknown[]) => ({
            rows: (await executor.query(text, values)) as unknown[],
          }),
        }
      : undefined;
    const id = await this.boss.send(queue, payload, db ? { db } : {});
    if (!id) throw new Error(`queue ${queue} refused the job`);
    return id;
  }

  /** Wakes this process's idle workers of a queue (after a commit that queued work for it). */
  wake(queue: string): void {
    for (const workerId of this.workerIds.get(queue) ?? []) this.boss.notifyWorker(workerId);
  }

  async startWorkers(): Promise<void> {
    this.workersStarted = true;
    for (const name of this.definitions.keys()) await this.startWorkersFor(name);
  }

  get runsWorkers(): boolean {
    return this.workersStarted;
  }

  private async startWorkersFor(name: string): Promise<void> {
    const definition = this.definitions.get(name);
    if (!definition || this.workerIds.has(name)) return;
    const ids: string[] = [];
    for (let index = 0; index < definition.concurrency; index += 1) {
      ids.push(
        await this.boss.work<object>(
          name,
          { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: this.pollingIntervalSeconds },
          async (jobs) => {
            for (const job of jobs) await this.deliver(definition, job);
          },
        ),
      );
    }
    this.workerIds.set(name, ids);
  }

  private deliver(definition: QueueDefinition<object>, job: PgBoss.JobWithMetadata<object>): Promise<void> {
    const controller = new AbortController();
    if (this.stopped) controller.abort();
    const delivery = this.run(definition, job, controller.signal);
    const entry = { controller, done: delivery.catch(() => undefined) };
    this.running.add(entry);
    return delivery.finally(() => this.running.delete(entry));
  }

  private async run(
    definition: QueueDefinition<object>,
    job: PgBoss.JobWithMetadata<object>,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      await definition.handle(job.data, {
        signal,
        retryCount: job.retryCount,
        isLastAttempt: job.retryCount >= job.retryLimit,
      });
    } catch (error) {
      if (!(error instanceof JobInterruptedError)) {
        this.logger.warn(
          { err: error, queue: definition.name, jobId: job.id, retryCount: job.retryCount },
          'job failed',
        );
        throw error;
      }
      // Handed back as a fresh delivery, so a restart does not use up one of the job's retries.
      await this.boss.send(definition.name, job.data, {});
      this.logger.info({ queue: definition.name, jobId: job.id }, 'job interrupted by shutdown; queued again');
    }
  }

  /** Aborts running handlers, waits for them to hand their jobs back, then stops pg-boss. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const { controller } of this.running) controller.abort();
    await Promise.all([...this.running].map((entry) => entry.done));
    await this.boss.stop({ graceful: true, wait: true, timeout: 5000 });
    await this.lockPool.end();
  }
}
