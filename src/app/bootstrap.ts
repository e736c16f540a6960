import pg from 'pg';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { ConfigError, loadConfig, type Config } from '../config/config';
import { createDataSource } from '../db/data-source';
import { runMigrations } from '../db/migrate';
import { Database } from '../db/repositories';
import { closeImageThreads } from '../images/image-bytes';
import { JobQueue } from '../jobs/job-queue';
import { createLogger } from '../observability/logger';
import { PostgresEventTarget } from '../pubsub/postgres-event-target';
import { createAppPubSub, type AppPubSub } from '../pubsub/pubsub';
import { ObjectStore } from '../storage/object-store';
import { DatasetDomain } from './dataset-domain';
import { EvaluationDomain } from './evaluation-domain';
import type { Infrastructure } from './infrastructure';
import { InspectionDomain } from './inspection-domain';

/** What was started, in order, so that it can be stopped in reverse. */
export class Cleanups {
  private readonly steps: Array<[name: string, cleanup: () => Promise<void> | void]> = [];

  constructor(private readonly logger: Logger) {}

  add(name: string, cleanup: () => Promise<void> | void): void {
    this.steps.push([name, cleanup]);
  }

  /** Runs every cleanup, newest first; a failing one is logged and the rest still run. */
  async runAll(): Promise<void> {
    for (const [name, cleanup] of this.steps.splice(0).reverse()) {
      try {
        this.logger.debug({ component: name }, 'stopping');
        await cleanup();
      } catch (error) {
        this.logger.warn({ err: error, component: name }, 'error during shutdown');
      }
    }
  }
}

/** The shared core of the API server and the worker process: storage, events, jobs and the three domains. */
export interface Core {
  dataSource: DataSource;
  db: Database;
  objectStore: ObjectStore;
  pubSub: AppPubSub;
  jobQueue: JobQueue;
  datasets: DatasetDomain;
  inspection: InspectionDomain;
  evaluations: EvaluationDomain;
}

/**
 * Connects to PostgreSQL (migrating it), S3, the LISTEN/NOTIFY event bus and the job queue,
 * and wires the domains. Everything started is registered in `cleanups`, in an order whose
 * reverse is the right shutdown order (evaluations hand their jobs back before the inference
 * engine closes; maps being written are stored before the pool closes).
 */
export async function startCore(
  config: Config,
  infrastructure: Infrastructure,
  logger: Logger,
  cleanups: Cleanups,
): Promise<Core> {
  const dataSource = createDataSource({ url: infrastructure.databaseUrl, poolSize: config.database.poolSize });
  await dataSource.initialize();
  cleanups.add('database pool', () => dataSource.destroy());
  await runMigrations(dataSource, logger);
  const db = new Database(dataSource);

  const objectStore = new ObjectStore(infrastructure.objectStore);
  cleanups.add('object store client', () => objectStore.destroy());
  await objectStore.ensureBucket();

  const publishPool = new pg.Pool({ connectionString: infrastructure.databaseUrl, max: 2 });
  publishPool.on('error', (error) => logger.warn({ err: error }, 'idle event-publishing connection failed'));
  cleanups.add('event publishing pool', () => publishPool.end());
  const eventTarget = await PostgresEventTarget.connect(infrastructure.databaseUrl, publishPool, logger);
  cleanups.add('event listener', () => eventTarget.close());
  const pubSub = createAppPubSub(eventTarget);

  // Registered before the domains, so closed after them (cleanups run last first).
  cleanups.add('image threads', closeImageThreads);
  const jobQueue = await JobQueue.start({ databaseUrl: infrastructure.databaseUrl, logger });
  cleanups.add('job queue', () => jobQueue.stop());
  const datasets = await DatasetDomain.create({ config, db, objectStore, pubSub, jobQueue, logger });
  cleanups.add('dataset background work', () => datasets.stop());
  const inspection = await InspectionDomain.create({ config, db, objectStore, pubSub, datasets, logger });
  cleanups.add('inference engine and model loading', () => inspection.stop());
  const evaluations = await EvaluationDomain.create({
    config,
    db,
    objectStore,
    pubSub,
    jobQueue,
    datasets,
    inspection,
    logger,
  });
  cleanups.add('evaluations', () => evaluations.stop());
  return { dataSource, db, objectStore, pubSub, jobQueue, datasets, inspection, evaluations };
}

/** What a process running job workers does besides the jobs: recover abandoned jobs, sweep orphans. */
export async function startBackgroundWork(core: Core): Promise<void> {
  await core.jobQueue.startWorkers();
  await core.datasets.startBackgroundWork();
  await core.evaluations.startBackgroundWork();
}

export interface RunningProcess {
  stop(): Promise<void>;
}

/**
 * A process entry (`main.ts`, `worker.ts`): loads the configuration (a ConfigError is one line
 * on stderr and exit 1), starts, and stops on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS.
 */
export function runProcess(
  start: (config: Config, logger: Logger) => Promise<RunningProcess>,
  options: { processName?: string } = {},
): void {
  const run = async (): Promise<void> => {
    let config: Config;
    try {
      config = loadConfig();
    } catch (error) {
      if (error instanceof ConfigError) {
        process.stderr.write(`${error.message}\n`);
        process.exit(1);
      }
      throw error;
    }
    const baseLogger = createLogger(config.logLevel);
    const logger = options.processName ? baseLogger.child({ process: options.processName }) : baseLogger;
    const running = await start(config, logger);

    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      const deadline = setTimeout(() => {
        logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting');
        process.exit(1);
      }, config.shutdownTimeoutMs);
      deadline.unref();
      running
        .stop()
        .then(() => {
          logger.info('stopped');
          process.exit(0);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        });
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  };
  run().catch((error: unknown) => {
    process.stderr.write(
      `Failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
