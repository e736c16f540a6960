import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal';
import type { ImageEntity } from '../db/entities/image.entity';
import type { InspectionEntity, InspectionUploadEntity } from '../db/entities/inspection.entity';
import { ModelStatus, type ModelVersionEntity } from '../db/entities/model-version.entity';
import type { Page, PageRequest } from '../db/pagination';
import type { Database } from '../db/repositories';
import type { InspectionListFilter, NewInspection } from '../db/repositories/inspection.repository';
import { AppError, badInput, ErrorCode, notFound } from '../errors';
import { encodeMapObject } from '../formats/anomaly-map-object';
import { inspectionFindings, type InferenceResult, type InspectionFindings, type LoadedModel } from '../inference';
import type { Admission } from '../inference/admission';
import type { AppPubSub } from '../pubsub/pubsub';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import type { DatasetImageCache } from '../images/dataset-image-cache';
import { mapConcurrently } from '../utils/concurrency';
import { isUuid } from '../utils/ids';
import { AnomalyMapMover } from './anomaly-map-mover';
import type { ImageService } from './image.service';
import { ImageInputError, type ModelRunner, type Prediction } from './model-runner.service';
import { checkThreshold, modelNotReady, type ModelService } from './model.service';
import {
  checkImageContentType,
  PresignedUploads,
  type UploadKind,
  type UploadTargetInfo,
} from './presigned-upload.service';

/** Images read and decoded, or results stored, at once by one inspectBatch (bounds its memory). */
const BATCH_CONCURRENCY = 4;

export interface InspectionSettings {
  batchMaxImages: number;
  uploadMaxBytes: number;
  uploadUrlExpirySeconds: number;
}

export interface InspectRequest {
  categoryId?: string | null;
  modelId?: string | null;
  imageId?: string | null;
  uploadId?: string | null;
  threshold?: number | null;
}

export interface InspectBatchRequest {
  categoryId: string;
  imageIds: readonly string[];
  threshold?: number | null;
}

export interface RequestInspectionUpload {
  contentType: string;
  byteSize: number;
  sha256?: string | null;
}

export interface InspectionFilter {
  categoryId?: string | null;
  modelId?: string | null;
  isAnomalous?: boolean | null;
  /** Lowest raw score. */
  minScore?: number | null;
  /** createdAt >= since. */
  since?: Date | null;
  /** createdAt < until. */
  until?: Date | null;
}

type InspectionInput =
  | { kind: 'image'; image: ImageEntity; bytes: Buffer }
  | { kind: 'upload'; upload: InspectionUploadEntity; bytes: Buffer };

/** An inspection computed but not yet stored. */
interface PendingInspection {
  id: string;
  model: ModelVersionEntity;
  input: InspectionInput;
  findings: InspectionFindings;
  /** The anomaly map at the model's input resolution. */
  anomalyMap: Float32Array;
  mapWidth: number;
  mapHeight: number;
}

/** Images sent for inspection outside any dataset: one object each, consumed by one `inspect`. */
function inspectionUploadKind(settings: InspectionSettings): UploadKind<InspectionUploadEntity> {
  return {
    label: 'inspection upload',
    repository: (repositories) => repositories.inspectionUploads,
    file: {
      key: objectKeys.inspectionUpload,
      contentType: (upload) => upload.contentType,
      byteSize: (upload) => upload.byteSize,
      noun: 'image',
      notArrived: 'the image has not been uploaded yet; PUT it to its URL, then inspect again',
    },
    maxBytes: settings.uploadMaxBytes,
    urlExpirySeconds: settings.uploadUrlExpirySeconds,
    read: { mode: 'whole' },
    tooLarge: (byteSize, argument) => {
      const message = `${argument} is ${byteSize}; at most ${settings.uploadMaxBytes} bytes are accepted`;
      return new AppError(ErrorCode.IMAGE_TOO_LARGE, message, { argument });
    },
    checkContentType: checkImageContentType,
  };
}

/**
 * `inspect`: one image (a dataset image or an inspection upload) through a READY model, with
 * the score, the verdict and the regions. Before it answers, the row is inserted with the exact
 * anomaly map (and an upload's bytes are stored in S3): an answered inspection survives a
 * crash, and a failure leaves no row (and removes what was stored). The map moves to S3 after
 * the answer; the heatmap, overlay and mask PNGs are drawn from it on their first request
 * (InspectionImages).
 */
export class InspectionService {
  private readonly uploads: PresignedUploads<InspectionUploadEntity>;
  private readonly mapMover: AnomalyMapMover;

  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly datasetImages: DatasetImageCache,
    private readonly runner: ModelRunner,
    /** Images in flight in this process (INSPECT_MAX_IN_FLIGHT): read, decoded, queued or running. */
    private readonly admission: Admission,
    private readonly models: ModelService,
    private readonly images: ImageService,
    private readonly pubSub: AppPubSub,
    private readonly settings: InspectionSettings,
    private readonly logger: Logger,
  ) {
    this.uploads = new PresignedUploads(db, objectStore, inspectionUploadKind(settings), logger);
    this.mapMover = new AnomalyMapMover(db.inspections, objectStore, logger);
  }

  requestUpload(request: RequestInspectionUpload, principal: Principal): Promise<UploadTargetInfo> {
    const contentType = this.uploads.checkContentType(request.contentType);
    const byteSize = this.uploads.checkByteSize(request.byteSize);
    const sha256 = this.uploads.checkSha256(request.sha256);
    return this.uploads.open({ contentType, byteSize, sha256, requestedBy: principal.apiKeyId });
  }

  async inspect(request: InspectRequest, principal: Principal): Promise<InspectionEntity> {
    const started = performance.now();
    const given = (value: string | null | undefined): value is string => value !== null && value !== undefined;
    if (given(request.categoryId) === given(request.modelId))
      throw badInput('give exactly one of categoryId and modelId', { argument: 'input' });
    if (given(request.imageId) === given(request.uploadId))
      throw badInput('give exactly one of imageId and uploadId', { argument: 'input' });
    const threshold = checkThreshold(request.threshold);
    const release = this.admit(1);
    try {
      return await this.inspectAdmitted(request, threshold, principal, started);
    } finally {
      release();
    }
  }

  private async inspectAdmitted(
    request: InspectRequest,
    threshold: number | null,
    principal: Principal,
    started: number,
  ): Promise<InspectionEntity> {
    const [model, input] = await Promise.all([
      this.resolveModel(request.categoryId, request.modelId),
      this.readInput(request, principal),
    ]);
    const read = performance.now();
    let prediction: Prediction;
    let inferred: number;
    let pending: PendingInspection;
    try {
      prediction = await this.runner.predict(model, input.bytes);
      inferred = performance.now();
      const { originalWidth, originalHeight } = prediction;
      pending = this.findings(
        model,
        prediction.loaded,
        input,
        originalWidth,
        originalHeight,
        prediction.result,
        threshold,
      );
    } catch (error) {
      // Bytes that are no usable image make an upload useless; keep nothing of it.
      if (input.kind === 'upload' && error instanceof ImageInputError) await this.uploads.discard([input.upload.id]);
      throw error;
    }
    const rendered = performance.now();
    const storeTimings = { objectsMs: 0, insertMs: 0 };
    const [inspection] = await this.store([pending], rendered - started, principal, storeTimings);
    const { result } = prediction;
    const round = (ms: number): number => Math.round(ms * 10) / 10;
    this.logger.debug(
      {
        inspectionId: pending.id,
        modelId: model.id,
        readMs: round(read - started),
        decodeMs: round(prediction.prepareMs),
        queueMs: round(result.timings.queueMs),
        runMs: round(result.timings.inferenceMs),
        batchSize: result.timings.batchSize,
        inferMs: round(prediction.inferMs),
        renderMs: round(rendered - inferred),
        storeMs: round(performance.now() - rendered),
        objectsMs: round(storeTimings.objectsMs),
        insertMs: round(storeTimings.insertMs),
      },
      'inspection timings',
    );
    return inspection as InspectionEntity;
  }

  /** Up to INSPECT_BATCH_MAX_IMAGES dataset images through the category's active model, in one go. */
  async inspectBatch(request: InspectBatchRequest, principal: Principal): Promise<InspectionEntity[]> {
    const started = performance.now();
    const count = request.imageIds.length;
    if (count === 0) throw badInput('imageIds must not be empty', { argument: 'imageIds' });
    if (count > this.settings.batchMaxImages) {
      throw new AppError(
        ErrorCode.BATCH_TOO_LARGE,
        `imageIds holds ${count} ids; at most ${this.settings.batchMaxImages} (INSPECT_BATCH_MAX_IMAGES) are inspected at once`,
        {
          argument: 'imageIds',
          maxImages: this.settings.batchMaxImages,
        },
      );
    }
    const threshold = checkThreshold(request.threshold);
    const release = this.admit(count);
    try {
      return await this.inspectBatchAdmitted(request, threshold, principal, started);
    } finally {
      release();
    }
  }

  private async inspectBatchAdmitted(
    request: InspectBatchRequest,
    threshold: number | null,
    principal: Principal,
    started: number,
  ): Promise<InspectionEntity[]> {
    const model = await this.resolveModel(request.categoryId, null);
    const images = await Promise.all(request.imageIds.map((imageId) => this.requireImage(imageId)));
    const loaded = await this.runner.load(model);
    const prepared = await mapConcurrently(images, BATCH_CONCURRENCY, async (image) => {
      const bytes = await this.datasetImages.get(image.objectKey);
      const { originalWidth, originalHeight, tensor } = await this.runner.preprocess(bytes, loaded);
      return { input: { kind: 'image' as const, image, bytes }, originalWidth, originalHeight, tensor };
    });
    const tensors = prepared.map((item) => item.tensor);
    const results = await this.runner.inferBatch(model, loaded, tensors, { timeoutMs: this.runner.requestTimeoutMs });
    const pending = prepared.map((item, index) =>
      this.findings(
        model,
        loaded,
        item.input,
        item.originalWidth,
        item.originalHeight,
        results[index] as InferenceResult,
        threshold,
      ),
    );
    return this.store(pending, performance.now() - started, principal);
  }

  /**
   * Slots for `images` images, or QUEUE_FULL at once: before anything is read or decoded, so a
   * refused request costs (almost) nothing. The caller releases them however it ends.
   */
  private admit(images: number): () => void {
    const release = this.admission.tryAcquire(images);
    if (release) return release;
    const { capacity, inFlight } = this.admission;
    throw new AppError(
      ErrorCode.QUEUE_FULL,
      `${inFlight} images are being inspected, and this process takes at most ${capacity} at once (INSPECT_MAX_IN_FLIGHT); retry later`,
      { maxInFlight: capacity },
    );
  }

  private async resolveModel(
    categoryId: string | null | undefined,
    modelId: string | null | undefined,
  ): Promise<ModelVersionEntity> {
    if (modelId !== null && modelId !== undefined) {
      const model = await this.models.require(modelId);
      if (model.status !== ModelStatus.READY) throw modelNotReady(model);
      return model;
    }
    return this.models.requireActiveForCategory(categoryId ?? '');
  }

  private async requireImage(imageId: string): Promise<ImageEntity> {
    const image = await this.images.findById(imageId);
    if (!image) throw notFound('Image', imageId);
    return image;
  }

  private async readInput(request: InspectRequest, principal: Principal): Promise<InspectionInput> {
    if (request.imageId !== null && request.imageId !== undefined) {
      // Dataset images live at images/<id>, so their bytes are read while the row is looked up.
      const expectedKey = isUuid(request.imageId) ? objectKeys.image(request.imageId.toLowerCase()) : null;
      const [image, bytes] = await Promise.all([
        this.requireImage(request.imageId),
        expectedKey ? this.datasetImages.get(expectedKey).catch(() => null) : null,
      ]);
      return {
        kind: 'image',
        image,
        bytes:
          bytes !== null && image.objectKey === expectedKey ? bytes : await this.datasetImages.get(image.objectKey),
      };
    }
    const uploadId = request.uploadId ?? '';
    const upload = await this.uploads.findOwned(uploadId, principal);
    if (!upload) throw notFound('Inspection upload', uploadId);
    const { bytes } = await this.uploads.receive(upload);
    return { kind: 'upload', upload, bytes };
  }

  private readDatasetImage(key: string): Promise<Buffer> {
    return this.datasetImages.get(key);
  }

  /** Post-processing: the score's verdict and the regions at the image's size. */
  private findings(
    model: ModelVersionEntity,
    loaded: LoadedModel,
    input: InspectionInput,
    width: number,
    height: number,
    result: InferenceResult,
    threshold: number | null,
  ): PendingInspection {
    const [mapHeight, mapWidth] = loaded.inputSize;
    const findings = inspectionFindings({
      anomalyMap: result.anomalyMap,
      mapWidth,
      mapHeight,
      score: result.score,
      width,
      height,
      threshold: threshold ?? model.threshold ?? loaded.metadata.proposedThreshold,
      scoreStats: loaded.metadata.scoreStats,
    });
    return { id: randomUUID(), model, input, findings, anomalyMap: result.anomalyMap, mapWidth, mapHeight };
  }

  /**
   * The rows, each with its exact anomaly map, in one INSERT: durable once it returns, without
   * an S3 PUT on the answer's path (the maps move to S3 afterwards, AnomalyMapMover). An upload's
   * bytes are PUT where its URL cannot overwrite them while the rows are inserted in a
   * transaction that consumes the uploads and commits once the bytes are stored; on failure
   * they are removed again.
   */
  private async store(
    pending: PendingInspection[],
    latencyMs: number,
    principal: Principal,
    timings?: { objectsMs: number; insertMs: number },
  ): Promise<InspectionEntity[]> {
    const started = performance.now();
    const maps = pending.map(({ id, anomalyMap, mapWidth, mapHeight }) => ({
      inspectionId: id,
      // Exact float32 values: the images are drawn from them later and must match this answer.
      object: encodeMapObject(anomalyMap, mapWidth, mapHeight, { exact: true }),
    }));
    const rows = pending.map((item, index) => inspectionRow(item, maps[index]?.object as Buffer, latencyMs, principal));
    const inputs = pending.flatMap(({ id, input }) =>
      // The bytes inspected, not a copy of the upload object: its URL could still overwrite that.
      input.kind === 'upload'
        ? [{ key: objectKeys.inspectionInput(id), body: input.bytes, contentType: input.upload.contentType }]
        : [],
    );
    const uploadIds = pending.flatMap((item) => (item.input.kind === 'upload' ? [item.input.upload.id] : []));
    const written: string[] = [];
    let inspections: InspectionEntity[];
    try {
      if (uploadIds.length === 0) {
        inspections = await this.db.inspections.insertMany(rows);
        if (timings) timings.insertMs = performance.now() - started;
      } else {
        inspections = await this.db.transaction(async (tx) => {
          const insert = async (): Promise<InspectionEntity[]> => {
            if (!(await this.uploads.claim(tx, uploadIds))) throw notFound('Inspection upload', uploadIds.join(', '));
            const inserted = await tx.inspections.insertMany(rows);
            if (timings) timings.insertMs = performance.now() - started;
            return inserted;
          };
          const puts = mapConcurrently(inputs, BATCH_CONCURRENCY, async ({ key, body, contentType }) => {
            written.push(key);
            await this.objectStore.put(key, body, contentType);
            if (timings) timings.objectsMs = performance.now() - started;
          });
          // Both settle before the transaction ends, so no PUT lands after the cleanup below.
          const [inserted, stored] = await Promise.allSettled([insert(), puts]);
          if (inserted.status === 'rejected') throw inserted.reason;
          if (stored.status === 'rejected') throw stored.reason;
          return inserted.value;
        });
      }
    } catch (error) {
      await this.objectStore
        .delete(written)
        .catch((cleanupError: unknown) =>
          this.logger.warn({ err: cleanupError }, 'could not remove the objects of a failed inspection'),
        );
      throw error;
    }
    for (const inspection of inspections) delete inspection.pendingMap;
    this.mapMover.moveSoon(maps);
    await this.uploads.removeConsumed(uploadIds);
    for (const inspection of inspections) {
      this.pubSub.publish('INSPECTION_CREATED', {
        inspectionId: inspection.id,
        categoryId: inspection.categoryId,
        isAnomalous: inspection.isAnomalous,
      });
    }
    return inspections;
  }

  /** Moves maps whose move after their answer never happened (run periodically). */
  sweepPendingMaps(now?: Date): Promise<number> {
    return this.mapMover.sweep(now);
  }

  /** Resolves once the maps being moved to S3 are there (shutdown waits for it before the pool closes). */
  drainMapMoves(): Promise<void> {
    return this.mapMover.drain();
  }

  async findById(id: string): Promise<InspectionEntity | null> {
    return isUuid(id) ? this.db.inspections.findById(id.toLowerCase()) : null;
  }

  async require(id: string): Promise<InspectionEntity> {
    const inspection = await this.findById(id);
    if (!inspection) throw notFound('Inspection', id);
    return inspection;
  }

  list(filter: InspectionFilter, page: PageRequest): Promise<Page<InspectionEntity>> {
    const uuid = (value: string, argument: string): string => {
      if (!isUuid(value)) throw badInput(`${argument} is not an id`, { argument });
      return value.toLowerCase();
    };
    const checked: InspectionListFilter = {};
    if (filter.categoryId) checked.categoryId = uuid(filter.categoryId, 'filter.categoryId');
    if (filter.modelId) checked.modelId = uuid(filter.modelId, 'filter.modelId');
    if (filter.isAnomalous !== null && filter.isAnomalous !== undefined) checked.isAnomalous = filter.isAnomalous;
    if (filter.minScore !== null && filter.minScore !== undefined) {
      if (!Number.isFinite(filter.minScore))
        throw badInput('filter.minScore must be a finite number', { argument: 'filter.minScore' });
      checked.minScore = filter.minScore;
    }
    if (filter.since) checked.since = filter.since;
    if (filter.until) checked.until = filter.until;
    return this.db.inspections.page(checked, page);
  }

  /** Presigned GET of an uploaded input, served with the type it was stored with. */
  presignedInputUrl(key: string): Promise<string> {
    return this.objectStore.presignGet(key);
  }

  sweepExpiredUploads(): Promise<number> {
    return this.uploads.sweepExpired();
  }
}

/**
 * The row of an inspection, with its exact map object until that moves to S3; `latencyMs` is
 * the service time until its result was known.
 */
function inspectionRow(item: PendingInspection, map: Buffer, latencyMs: number, principal: Principal): NewInspection {
  const { findings, input } = item;
  return {
    id: item.id,
    modelId: item.model.id,
    categoryId: item.model.categoryId,
    imageId: input.kind === 'image' ? input.image.id : null,
    inputObjectKey: input.kind === 'upload' ? objectKeys.inspectionInput(item.id) : null,
    width: findings.width,
    height: findings.height,
    score: findings.score,
    normalizedScore: findings.normalizedScore,
    isAnomalous: findings.isAnomalous,
    threshold: findings.threshold,
    regions: findings.regions.map((region) => ({ ...region })),
    latencyMs,
    heatmapObjectKey: objectKeys.inspectionArtifact(item.id, 'heatmap'),
    overlayObjectKey: objectKeys.inspectionArtifact(item.id, 'overlay'),
    maskObjectKey: objectKeys.inspectionArtifact(item.id, 'mask'),
    mapObjectKey: null,
    pendingMap: map,
    mapWidth: item.mapWidth,
    mapHeight: item.mapHeight,
    mapMin: null,
    mapMax: null,
    requestedBy: principal.apiKeyId,
  };
}
