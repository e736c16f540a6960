import pg from 'pg';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Config } from '../config/config';
import { Database } from '../db/repositories';
import { createDataSource } from '../db/data-source';
import { runMigrations } from '../db/migrate';
import { buildAppSchema, type ResolverBinding } from '../graphql/schema';
import { Readiness } from '../http/readiness';
import { startHttpServer } from '../http/server';
import type { Infrastructure } from './infrastructure';
import { JobQueue } from '../jobs/job-queue';
import { ServiceMetrics } from '../observability/prometheus';
import { PostgresEventTarget } from '../pubsub/postgres-event-target';
import { createAppPubSub } from '../pubsub/pubsub';
import { ApiKeyResolver } from '../resolvers/api-key.resolver';
import { HealthResolver } from '../resolvers/health.resolver';
import { ApiKeyService } from '../services/api-key.service';
import { DatasetDomain } from './dataset-domain';
import { EvaluationDomain } from './evaluation-domain';
import { InspectionDomain } from './inspection-domain';
import { ObjectStore } from '../storage/object-store';

export interface Application {
  url: string;
  port: number;
  /** Secret of the ADMIN key created on a fresh database, to be shown once. */
  initialAdminKey: string | null;
  dataSource: DataSource;
  stop(): Promise<void>;
}

/** The composition root: builds every service once and wires them to the GraphQL server. */
export async function startApplication(config: Config, infrastructure: Infrastructure, logger: Logger): Promise<Application> {
  const cleanups: Array<[name: string, cleanup: () => Promise<void> | void]> = [];
  const stopAll = async (): Promise<void> => {
    for (const [name, cleanup] of cleanups.reverse()) {
      try {
        logger.debug({ component: name }, 'stopping');
        await cleanup();
      } catch (error) {
        logger.warn({ err: error }, 'error during shutdown');
      }
    }
  };

  try {
    const dataSource = createDataSource({ url: infrastructure.databaseUrl, poolSize: config.database.poolSize });
    await dataSource.initialize();
    cleanups.push(['database pool', () => dataSource.destroy()]);
    await runMigrations(dataSource, logger);
    const db = new Database(dataSource);

    const objectStore = new ObjectStore(infrastructure.objectStore);
    cleanups.push(['object store client', () => objectStore.destroy()]);
    await objectStore.ensureBucket();

    const publishPool = new pg.Pool({ connectionString: infrastructure.databaseUrl, max: 2 });
    publishPool.on('error', (error) => logger.warn({ err: error }, 'idle event-publishing connection failed'));
    cleanups.push(['event publishing pool', () => publishPool.end()]);
    const eventTarget = await PostgresEventTarget.connect(infrastructure.databaseUrl, publishPool, logger);
    cleanups.push(['event listener', () => eventTarget.close()]);
    const pubSub = createAppPubSub(eventTarget);

    const jobQueue = await JobQueue.start({ databaseUrl: infrastructure.databaseUrl, logger });
    cleanups.push(['job queue', () => jobQueue.stop()]);
    const datasets = await DatasetDomain.create({ config, dataSource, db, objectStore, pubSub, jobQueue, logger });
    cleanups.push(['dataset background work', () => datasets.stop()]);
    // Stopped after the HTTP server has drained and before the database pool closes.
    const inspection = new InspectionDomain({ config, dataSource, db, objectStore, pubSub, datasets, logger });
    cleanups.push(['inference engine and model loading', () => inspection.stop()]);
    const evaluations = await EvaluationDomain.create({ config, dataSource, db, objectStore, pubSub, jobQueue, datasets, inspection, logger });
    // Stopped before the engine: running evaluations are handed back to the queue first.
    cleanups.push(['evaluations', () => evaluations.stop()]);

    const apiKeys = new ApiKeyService(dataSource, pubSub);
    if (config.adminApiKey) await apiKeys.ensureAdminKey(config.adminApiKey);
    const initialAdminKey = await apiKeys.createInitialAdminKey();

    const readiness = new Readiness();
    readiness.register('database', async () => {
      await dataSource.query('SELECT 1');
    });
    readiness.register('objectStore', () => objectStore.ping());
    await inspection.start(readiness, { embeddedDatabase: infrastructure.embedded.postgres });

    const bindings: ResolverBinding[] = [
      [HealthResolver, new HealthResolver()],
      [ApiKeyResolver, new ApiKeyResolver(apiKeys)],
      ...datasets.resolverBindings(),
      ...inspection.resolverBindings(),
      ...evaluations.resolverBindings(),
    ];
    const schema = await buildAppSchema(bindings, pubSub);
    const http = await startHttpServer({ config, logger, schema, dataSource, apiKeys, readiness, metrics: new ServiceMetrics() });
    cleanups.push(['http and websocket server', () => http.close()]);

    if (config.jobWorkersInProcess) {
      await jobQueue.startWorkers();
      await datasets.startBackgroundWork();
      await evaluations.startBackgroundWork();
    }

    return { url: http.url, port: http.port, initialAdminKey, dataSource, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
