// Services built as the server builds them (src/app), on a test database and bucket of their
// own, without the server: for tests that call services directly.
import { createPubSub } from '@graphql-yoga/subscription';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { DatasetDomain } from '../../src/app/dataset-domain';
import { loadConfig } from '../../src/config/config';
import { Database } from '../../src/db/repositories';
import { closeImageThreads } from '../../src/images/image-bytes';
import { JobQueue } from '../../src/jobs/job-queue';
import type { AppPubSub, Topics } from '../../src/pubsub/pubsub';
import type { ObjectStore } from '../../src/storage/object-store';
import { createMigratedDataSource, createTestObjectStore } from './resources';

type ServiceName =
  'images' | 'ingest' | 'datasets' | 'categories' | 'snapshots' | 'uploads' | 'imports' | 'orphanSweep';
type DomainServices = Pick<DatasetDomain, ServiceName>;

export interface DatasetServices extends DomainServices {
  dataSource: DataSource;
  db: Database;
  objectStore: ObjectStore;
  /** Started, its queues defined; no workers run unless a test starts them (jobQueue.startWorkers()). */
  jobQueue: JobQueue;
  /** In this process only. */
  pubSub: AppPubSub;
  close(): Promise<void>;
}

/**
 * The dataset domain on a fresh database and bucket. `env` is read like the server's
 * environment (e.g. IMPORT_ROOTS, UPLOAD_MAX_BYTES).
 */
export async function createDatasetServices(env: Record<string, string> = {}): Promise<DatasetServices> {
  const logger = pino({ level: 'silent' });
  const dataSource = await createMigratedDataSource();
  const objectStore = await createTestObjectStore();
  const databaseUrl = (dataSource.options as { url: string }).url;
  const jobQueue = await JobQueue.start({ databaseUrl, logger, pollingIntervalSeconds: 0.5, poolSize: 2 });
  const db = new Database(dataSource);
  const pubSub: AppPubSub = createPubSub<Topics>();
  const domain = await DatasetDomain.create({ config: loadConfig(env), db, objectStore, pubSub, jobQueue, logger });
  const { images, ingest, datasets, categories, snapshots, uploads, imports, orphanSweep } = domain;
  return {
    dataSource,
    db,
    objectStore,
    jobQueue,
    pubSub,
    images,
    ingest,
    datasets,
    categories,
    snapshots,
    uploads,
    imports,
    orphanSweep,
    async close() {
      await domain.stop();
      await jobQueue.stop();
      await closeImageThreads();
      objectStore.destroy();
      await dataSource.destroy();
    },
  };
}
