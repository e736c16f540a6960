import type { DataSource, EntityManager } from 'typeorm';
import { ApiKeyRepository } from './api-key.repository';
import { CategoryRepository } from './category.repository';
import { DatasetRepository } from './dataset.repository';
import { EvaluationRepository } from './evaluation.repository';
import { ImageUploadRepository } from './image-upload.repository';
import { ImageRepository } from './image.repository';
import { ImportJobRepository } from './import-job.repository';
import { InspectionUploadRepository } from './inspection-upload.repository';
import { InspectionRepository } from './inspection.repository';
import { ModelUploadRepository } from './model-upload.repository';
import { ModelRepository } from './model.repository';
import { SeedMarkerRepository } from './seed-marker.repository';
import { ServiceSecretRepository } from './service-secret.repository';
import { SnapshotRepository } from './snapshot.repository';

/**
 * Every repository, bound to one EntityManager: the data source's own (each statement on its
 * own) or a transaction's. Services hold a {@link Database} and never write SQL themselves.
 */
export class Repositories {
  readonly apiKeys: ApiKeyRepository;
  readonly datasets: DatasetRepository;
  readonly categories: CategoryRepository;
  readonly images: ImageRepository;
  readonly imageUploads: ImageUploadRepository;
  readonly snapshots: SnapshotRepository;
  readonly importJobs: ImportJobRepository;
  readonly seedMarkers: SeedMarkerRepository;
  readonly models: ModelRepository;
  readonly modelUploads: ModelUploadRepository;
  readonly inspections: InspectionRepository;
  readonly inspectionUploads: InspectionUploadRepository;
  readonly evaluations: EvaluationRepository;
  readonly serviceSecrets: ServiceSecretRepository;

  constructor(readonly manager: EntityManager) {
    this.apiKeys = new ApiKeyRepository(manager);
    this.datasets = new DatasetRepository(manager);
    this.categories = new CategoryRepository(manager);
    this.images = new ImageRepository(manager);
    this.imageUploads = new ImageUploadRepository(manager);
    this.snapshots = new SnapshotRepository(manager);
    this.importJobs = new ImportJobRepository(manager);
    this.seedMarkers = new SeedMarkerRepository(manager);
    this.models = new ModelRepository(manager);
    this.modelUploads = new ModelUploadRepository(manager);
    this.inspections = new InspectionRepository(manager);
    this.inspectionUploads = new InspectionUploadRepository(manager);
    this.evaluations = new EvaluationRepository(manager);
    this.serviceSecrets = new ServiceSecretRepository(manager);
  }
}

/** The repositories outside any transaction, and a way to run several in one. */
export class Database extends Repositories {
  constructor(readonly dataSource: DataSource) {
    super(dataSource.manager);
  }

  /** Runs `work` in one transaction; its repositories all use that transaction. */
  transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(new Repositories(manager)));
  }

  /** `SELECT 1`, for readiness checks. */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }
}
