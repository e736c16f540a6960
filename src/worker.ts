// `npm run worker`: a process that only runs background jobs (imports, evaluations) and
// the periodic sweeps, next to API servers started with JOB_WORKERS_IN_PROCESS=false.
import 'reflect-metadata';
import pg from 'pg';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config/config';
import { Database } from './db/repositories';
import { createDataSource } from './db/data-source';
import { runMigrations } from './db/migrate';
import { startInfrastructure, type Infrastructure } from './app/infrastructure';
import { JobQueue } from './jobs/job-queue';
import { createLogger } from './observability/logger';
import { PostgresEventTarget } from './pubsub/postgres-event-target';
import { createAppPubSub } from './pubsub/pubsub';
import { DatasetDomain } from './app/dataset-domain';
import { EvaluationDomain } from './app/evaluation-domain';
import { InspectionDomain } from './app/inspection-domain';
import { ObjectStore } from './storage/object-store';

async function startWorker(config: Config, infrastructure: Infrastructure, logger: Logger): Promise<() => Promise<void>> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const stopAll = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.warn({ err: error }, 'error during shutdown');
      }
    }
  };
  try {
    const dataSource = createDataSource({ url: infrastructure.databaseUrl, poolSize: config.database.poolSize });
    await dataSource.initialize();
    cleanups.push(() => dataSource.destroy());
    await runMigrations(dataSource, logger);
    const db = new Database(dataSource);
    const objectStore = new ObjectStore(infrastructure.objectStore);
    cleanups.push(() => objectStore.destroy());
    await objectStore.ensureBucket();
    const publishPool = new pg.Pool({ connectionString: infrastructure.databaseUrl, max: 2 });
    publishPool.on('error', (error) => logger.warn({ err: error }, 'idle event-publishing connection failed'));
    cleanups.push(() => publishPool.end());
    const eventTarget = await PostgresEventTarget.connect(infrastructure.databaseUrl, publishPool, logger);
    cleanups.push(() => eventTarget.close());
    const pubSub = createAppPubSub(eventTarget);
    const jobQueue = await JobQueue.start({ databaseUrl: infrastructure.databaseUrl, logger });
    cleanups.push(() => jobQueue.stop());
    const datasets = await DatasetDomain.create({ config, dataSource, db, objectStore, pubSub, jobQueue, logger });
    cleanups.push(() => datasets.stop());
    // Only its engine and model loader are used here: models load on demand, none at start.
    const inspection = new InspectionDomain({ config, dataSource, db, objectStore, pubSub, datasets, logger });
    cleanups.push(() => inspection.stop());
    const evaluations = await EvaluationDomain.create({ config, dataSource, db, objectStore, pubSub, jobQueue, datasets, inspection, logger });
    cleanups.push(() => evaluations.stop());
    await jobQueue.startWorkers();
    await datasets.startBackgroundWork();
    await evaluations.startBackgroundWork();
    return stopAll;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function main(): Promise<void> {
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
  if (!config.database.url || config.s3.embedded) {
    // The embedded PostgreSQL and S3 belong to the server process that started them.
    process.stderr.write('A worker needs the shared database and object store: set DATABASE_URL and S3_ENDPOINT (or AWS credentials).\n');
    process.exit(1);
  }
  const logger = createLogger(config.logLevel).child({ process: 'worker' });
  const infrastructure = await startInfrastructure(config, logger);
  const stop = await startWorker(config, infrastructure, logger);
  process.stdout.write('Worker: running job workers\n');

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => process.exit(1), config.shutdownTimeoutMs);
    deadline.unref();
    stop()
      .then(() => infrastructure.stop())
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
