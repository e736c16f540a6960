import { randomBytes } from 'node:crypto';
import type { Router } from 'express';
import type { Logger } from 'pino';
import { UrlSigner } from '../auth/signed-urls';
import type { DomainDependencies } from './domain-dependencies';
import type { ResolverBinding } from '../graphql/schema';
import { DatasetImageCache } from '../images/dataset-image-cache';
import { inspectionImagesRouter } from '../http/inspection-images.route';
import type { Readiness } from '../http/readiness';
import { InferenceEngine } from '../inference';
import { describeMissing, resolveExecutionProviders } from '../inference/execution-providers';
import type { ExecutionProvider } from '../inference/worker-protocol';
import { Admission } from '../inference/admission';
import { PreprocessPool } from '../inference/preprocess-pool';
import { InspectionMetrics } from '../observability/prometheus';
import { HealthInferenceResolver, ModelPlacementResolver } from '../resolvers/inference-placement.resolver';
import { InspectionResolver } from '../resolvers/inspection.resolver';
import { CategoryActiveModelResolver, ModelResolver } from '../resolvers/model.resolver';
import { seedDemo } from '../seed/demo-seed';
import type { DatasetDomain } from './dataset-domain';
import { InspectionImages } from '../services/inspection-images.service';
import { InspectionService } from '../services/inspection.service';
import { ModelLoaderService } from '../services/model-loader.service';
import { ModelRunner } from '../services/model-runner.service';
import { ModelService } from '../services/model.service';

export interface InspectionDomainDependencies extends DomainDependencies {
  /** The dataset services models and inspections use (and the demo seed). */
  datasets: Pick<DatasetDomain, 'categories' | 'snapshots' | 'images' | 'ingest'>;
  logger: Logger;
}

/** The service_secret row of the key that signs inspection image URLs. */
const IMAGE_URL_SECRET = 'inspection-image-urls';

/** How often anomaly maps still in their rows are looked for and moved to S3. */
const MAP_SWEEP_INTERVAL_MS = 60_000;

/** How often expired model and inspection uploads are removed. */
const UPLOAD_SWEEP_INTERVAL_MS = 10 * 60_000;

/**
 * Models and inspections, wired once per process around its one InferenceEngine (a pool of
 * onnxruntime worker threads).
 */
export class InspectionDomain {
  readonly engine: InferenceEngine;
  /** Per-model inference figures and admission, for /metrics (ServiceMetrics serves them). */
  readonly metrics: InspectionMetrics;
  /** Images being inspected at once (INSPECT_MAX_IN_FLIGHT). */
  private readonly admission: Admission;
  /** Threads that decode and pre-process the images inspected and evaluated here. */
  private readonly preprocessing: PreprocessPool;
  readonly loader: ModelLoaderService;
  /** Image bytes → model → result, for inspections and for this process's evaluations. */
  readonly runner: ModelRunner;
  readonly models: ModelService;
  readonly inspections: InspectionService;
  /** Dataset image bytes recently inspected (inspections and their images). */
  private readonly datasetImages: DatasetImageCache;
  /** Set by start(): the signing key lives in the database. */
  private images: InspectionImages | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private mapSweepTimer: NodeJS.Timeout | null = null;

  /**
   * Checks INFERENCE_EXECUTION_PROVIDERS on this machine first: a provider that cannot run here is
   * named in one line and dropped (INFERENCE_PROVIDER_FALLBACK=cpu) or refuses the start (`fail`).
   */
  static async create(deps: InspectionDomainDependencies): Promise<InspectionDomain> {
    const { executionProviders, providerFallback } = deps.config.inference;
    const { providers, missing } = await resolveExecutionProviders(executionProviders, providerFallback);
    if (missing.length > 0)
      deps.logger.warn(
        { requested: executionProviders, providers },
        `${describeMissing(missing)}: inference runs on ${providers.join(', ')} (INFERENCE_PROVIDER_FALLBACK=cpu)`,
      );
    return new InspectionDomain(deps, providers);
  }

  private constructor(
    private readonly deps: InspectionDomainDependencies,
    executionProviders: ExecutionProvider[],
  ) {
    const { config, db, objectStore, pubSub, datasets } = deps;
    const logger = deps.logger.child({ component: 'inspection' });
    this.metrics = new InspectionMetrics({
      queueLengths: () => this.engine.stats().models.map(({ key, queued }) => ({ modelVersionId: key, queued })),
      loadedModels: () =>
        this.engine.stats().models.map(({ key, executionProvider }) => ({ modelVersionId: key, executionProvider })),
      imagesInFlight: () => this.admission.inFlight,
    });
    // The engine checks each model file (external data, op domains, input size) before onnxruntime reads it.
    this.engine = new InferenceEngine(
      { ...config.inference, executionProviders, maxInputSize: config.models.maxInputSize },
      this.metrics,
    );
    this.admission = new Admission(config.inspections.maxInFlight, () => this.metrics.admissionRefused());
    this.loader = new ModelLoaderService(db, objectStore, this.engine, pubSub, logger, config.models);
    const runnerSettings = { resize: config.inspections.resize, imageMaxPixels: config.datasets.imageMaxPixels };
    this.preprocessing = new PreprocessPool(config.inspections.preprocessWorkers);
    this.runner = new ModelRunner(this.engine, this.loader, this.preprocessing, runnerSettings);
    this.models = new ModelService(
      db,
      objectStore,
      this.loader,
      datasets.categories,
      datasets.snapshots,
      pubSub,
      {
        maxBytes: config.models.maxBytes,
        uploadUrlExpirySeconds: config.datasets.uploadUrlExpirySeconds,
        accuracyTolerancePoints: config.accuracyGuard.tolerancePoints,
      },
      logger,
    );
    this.datasetImages = new DatasetImageCache(config.inspections.datasetImageCacheBytes, (key) =>
      objectStore.get(key),
    );
    this.inspections = new InspectionService(
      db,
      objectStore,
      this.datasetImages,
      this.runner,
      this.admission,
      this.models,
      datasets.images,
      pubSub,
      {
        batchMaxImages: config.inspections.batchMaxImages,
        uploadMaxBytes: config.datasets.uploadMaxBytes,
        uploadUrlExpirySeconds: config.datasets.uploadUrlExpirySeconds,
      },
      logger,
    );
  }

  resolverBindings(): ResolverBinding[] {
    return [
      [ModelResolver, new ModelResolver(this.models)],
      [CategoryActiveModelResolver, new CategoryActiveModelResolver(this.models)],
      [InspectionResolver, new InspectionResolver(this.inspections, this.inspectionImages)],
      [HealthInferenceResolver, new HealthInferenceResolver(this.engine)],
      [ModelPlacementResolver, new ModelPlacementResolver(this.engine)],
    ];
  }

  /** The signed image URLs' route (GET /inspections/:id/:kind.png). */
  httpRouters(): Router[] {
    return [inspectionImagesRouter(this.inspectionImages, this.deps.logger.child({ component: 'inspection-images' }))];
  }

  get inspectionImages(): InspectionImages {
    if (!this.images) throw new Error('InspectionDomain.start() must run before its images are served');
    return this.images;
  }

  /** Reads (or, on a fresh database, creates) the key that signs image URLs; start() does this first. */
  async openImageUrls(): Promise<void> {
    const { config, db, objectStore, logger } = this.deps;
    const secret = await db.serviceSecrets.getOrCreate(IMAGE_URL_SECRET, randomBytes(32));
    this.images = new InspectionImages(
      db,
      objectStore,
      this.datasetImages,
      this.preprocessing,
      new UrlSigner(secret),
      { urlExpirySeconds: config.s3.presignedUrlExpirySeconds, imageMaxPixels: config.datasets.imageMaxPixels },
      logger.child({ component: 'inspection-images' }),
    );
  }

  /**
   * Before the server answers: fails validations a stopped process left behind and seeds the
   * demo on a first embedded start. Then loads the active models in the background; the
   * `models` readiness check fails until each is loaded and warmed up.
   */
  async start(readiness: Readiness, options: { embeddedDatabase: boolean }): Promise<void> {
    const { config, logger } = this.deps;
    await this.openImageUrls();
    await this.models.failAbandonedValidations();
    if (config.models.seedDemo ?? options.embeddedDatabase) {
      await seedDemo({ db: this.deps.db, datasets: this.deps.datasets, models: this.models, logger });
    }
    readiness.register('models', () => this.loader.assertActiveModelsWarm());
    this.loader.start();
    const sweep = (): void => {
      Promise.all([this.models.sweepExpiredUploads(), this.inspections.sweepExpiredUploads()]).catch((error: unknown) =>
        logger.warn({ err: error }, 'could not remove expired model or inspection uploads'),
      );
    };
    this.sweepTimer = setInterval(sweep, UPLOAD_SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
    const sweepMaps = (): void => {
      this.inspections
        .sweepPendingMaps()
        .catch((error: unknown) => logger.warn({ err: error }, 'could not move pending anomaly maps to S3'));
    };
    this.mapSweepTimer = setInterval(sweepMaps, MAP_SWEEP_INTERVAL_MS);
    this.mapSweepTimer.unref();
  }

  /** After the HTTP server has drained, before the database pool closes. */
  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.mapSweepTimer) clearInterval(this.mapSweepTimer);
    this.sweepTimer = null;
    this.mapSweepTimer = null;
    await this.inspections.drainMapMoves();
    await this.loader.stop();
    await this.engine.close();
    await this.preprocessing.close();
  }
}
