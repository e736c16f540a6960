import type { Logger } from 'pino';
import type { DomainDependencies } from './domain-dependencies';
import type { ResolverBinding } from '../graphql/schema';
import type { JobQueue } from '../jobs/job-queue';
import { CategoryResolver } from '../resolvers/category.resolver';
import { DatasetResolver } from '../resolvers/dataset.resolver';
import { ImageResolver } from '../resolvers/image.resolver';
import { createImportResolver } from '../resolvers/import.resolver';
import { SnapshotResolver } from '../resolvers/snapshot.resolver';
import { UploadResolver } from '../resolvers/upload.resolver';
import { CategoryService } from '../services/category.service';
import { DatasetService } from '../services/dataset.service';
import { ImageIngestService } from '../services/image-ingest.service';
import { ImageUploadService } from '../services/image-upload.service';
import { ImageService } from '../services/image.service';
import { MvtecImportService } from '../services/mvtec-import.service';
import { OrphanSweepService } from '../services/orphan-sweep.service';
import { SnapshotService } from '../services/snapshot.service';

export interface DatasetDomainDependencies extends DomainDependencies {
  jobQueue: JobQueue;
  logger: Logger;
}

/** How often a worker looks for imports left RUNNING by a process that died. */
const RECOVERY_INTERVAL_MS = 60_000;
/** Objects this young are never taken for orphans (see OrphanSweepOptions). */
const ORPHAN_GRACE_SECONDS = 3600;

/** The dataset domain, wired once per process (server or worker). */
export class DatasetDomain {
  readonly images: ImageService;
  /** Adds one image to a category: what uploads, imports and the demo seed share. */
  readonly ingest: ImageIngestService;
  readonly datasets: DatasetService;
  readonly categories: CategoryService;
  readonly snapshots: SnapshotService;
  readonly uploads: ImageUploadService;
  readonly imports: MvtecImportService;
  readonly orphanSweep: OrphanSweepService;
  private recoveryTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly deps: DatasetDomainDependencies) {
    const { config, db, objectStore, pubSub, jobQueue, logger } = deps;
    const domainLogger = logger.child({ component: 'datasets' });
    this.images = new ImageService(db, objectStore, domainLogger);
    this.ingest = new ImageIngestService(db, objectStore, this.images, {
      imageLimits: { maxPixels: config.datasets.imageMaxPixels },
    });
    this.datasets = new DatasetService(db, this.images);
    this.categories = new CategoryService(db, this.images);
    this.snapshots = new SnapshotService(db, this.images);
    this.uploads = new ImageUploadService(
      db,
      objectStore,
      this.categories,
      this.ingest,
      { maxBytes: config.datasets.uploadMaxBytes, urlExpirySeconds: config.datasets.uploadUrlExpirySeconds },
      domainLogger,
    );
    this.imports = new MvtecImportService(
      db,
      objectStore,
      jobQueue,
      pubSub,
      this.categories,
      this.ingest,
      { importRoots: config.datasets.importRoots, maxBytes: config.datasets.uploadMaxBytes },
      domainLogger,
    );
    this.orphanSweep = new OrphanSweepService(db, objectStore, domainLogger, {
      graceSeconds: ORPHAN_GRACE_SECONDS,
      lock: (key) => jobQueue.lock(key, 0),
    });
  }

  static async create(deps: DatasetDomainDependencies): Promise<DatasetDomain> {
    const domain = new DatasetDomain(deps);
    await deps.jobQueue.define(domain.imports.queueDefinition());
    return domain;
  }

  resolverBindings(): ResolverBinding[] {
    const loaderServices = { images: this.images, categories: this.categories, snapshots: this.snapshots };
    const ImportResolver = createImportResolver(this.imports);
    return [
      [DatasetResolver, new DatasetResolver(this.datasets, loaderServices)],
      [CategoryResolver, new CategoryResolver(this.categories, loaderServices)],
      [ImageResolver, new ImageResolver(this.images, this.categories)],
      [SnapshotResolver, new SnapshotResolver(this.snapshots, this.images)],
      [UploadResolver, new UploadResolver(this.uploads)],
      [ImportResolver, new ImportResolver()],
    ];
  }

  /** What a process running job workers also does: recover abandoned imports, sweep orphans. */
  async startBackgroundWork(): Promise<void> {
    const recover = (): Promise<void> =>
      this.imports.recoverAbandonedJobs().then(
        () => undefined,
        (error: unknown) => this.deps.logger.warn({ err: error }, 'could not check for abandoned import jobs'),
      );
    await recover();
    this.recoveryTimer = setInterval(() => void recover(), RECOVERY_INTERVAL_MS);
    this.recoveryTimer.unref();
    this.orphanSweep.start(this.deps.config.datasets.orphanSweepIntervalSeconds);
  }

  async stop(): Promise<void> {
    if (this.recoveryTimer) clearInterval(this.recoveryTimer);
    this.recoveryTimer = null;
    await this.orphanSweep.stop();
  }
}
