import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { DataSource, EntityManager, Repository } from 'typeorm';
import { hasRole, Role, type Principal } from '../auth/principal';
import { InspectionEntity, InspectionUploadEntity } from '../db/entities/inspection.entity';
import type { ImageEntity } from '../db/entities/image.entity';
import { ModelStatus, type ModelVersionEntity } from '../db/entities/model-version.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../db/pagination';
import { AppError, badInput, ErrorCode, notFound } from '../errors';
import { ACCEPTED_CONTENT_TYPES, decodeImageRgb, IMAGE_CONTENT_TYPES, ImageValidationError, sniffImageFormat } from '../images/image-bytes';
import {
  buildInspectionArtifacts,
  decodeRgb,
  INSPECTION_IMAGE_KINDS,
  ModelNotLoadedError,
  normalizeToChw,
  resizeRgbPilBilinear,
  resizeRgbSharpLinear,
  type InferenceEngine,
  type InferenceResult,
  type InspectionArtifacts,
  type LoadedModel,
  type ResizeMethod,
  type RgbImage,
} from '../inference';
import type { AppPubSub } from '../pubsub/pubsub';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { encodeMapObject, MAP_OBJECT_CONTENT_TYPE } from '../formats/anomaly-map-object';
import { isUuid, SHA256_HEX } from '../utils/ids';
import { mapConcurrently } from '../utils/concurrency';
import { queryRows } from '../db/sql';
import type { UploadTargetInfo } from './image-upload.service';
import type { ImageService } from './image.service';
import type { ModelLoaderService } from './model-loader.service';
import { checkThreshold, modelNotReady, type ModelService } from './model.service';

/** Images decoded, or results rendered, at once by one inspectBatch (bounds its memory). */
const BATCH_CONCURRENCY = 4;
/**
 * Anomaly-map writes (each one inspect's or inspectBatch's maps) allowed to trail behind the
 * answers; beyond it, answers wait for S3 to catch up rather than maps piling up in memory.
 */
const MAX_TRAILING_MAP_WRITES = 64;
const PNG = 'image/png';

export interface InspectionSettings {
  batchMaxImages: number;
  resize: ResizeMethod;
  imageMaxPixels: number;
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

type InspectionInput = { kind: 'image'; image: ImageEntity; bytes: Buffer } | { kind: 'upload'; upload: InspectionUploadEntity; bytes: Buffer };

/** An inspection computed but not yet stored. */
interface PendingInspection {
  id: string;
  model: ModelVersionEntity;
  input: InspectionInput;
  artifacts: InspectionArtifacts;
  /** The anomaly map at the model's input resolution (a copy of our own). */
  anomalyMap: Float32Array;
  mapWidth: number;
  mapHeight: number;
}

/** Where store() spent its time: writing the objects, then the rows. */
interface StoreTimings {
  objectsMs: number;
  insertMs: number;
}

/** Upload problems that make the pending upload useless: it is removed with the refusal. */
class UploadRefused extends AppError {}

function toAppError(error: unknown): unknown {
  return error instanceof ImageValidationError ? new AppError(error.code, error.message) : error;
}

/**
 * `inspect`: one image (a dataset image or an inspection upload) through a READY model, with
 * the score, the verdict, and heatmap/overlay/mask PNGs at the image's size stored in S3 under
 * the inspection's id. The row is written last, after its objects; a failure removes what was
 * stored, so no row points at a missing object and no request leaves half a result.
 */
export class InspectionService {
  private readonly repository: Repository<InspectionEntity>;
  private readonly uploads: Repository<InspectionUploadEntity>;
  /** Anomaly maps still being written after their inspections were answered. */
  private readonly mapWrites = new Set<Promise<void>>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly objectStore: ObjectStore,
    private readonly engine: InferenceEngine,
    private readonly loader: ModelLoaderService,
    private readonly models: ModelService,
    private readonly images: ImageService,
    private readonly pubSub: AppPubSub,
    private readonly settings: InspectionSettings,
    private readonly logger: Logger,
  ) {
    this.repository = dataSource.getRepository(InspectionEntity);
    this.uploads = dataSource.getRepository(InspectionUploadEntity);
  }

  async requestUpload(request: RequestInspectionUpload, principal: Principal): Promise<UploadTargetInfo> {
    const contentType = request.contentType.trim().toLowerCase();
    if (!ACCEPTED_CONTENT_TYPES.has(contentType)) {
      throw new AppError(ErrorCode.INVALID_IMAGE, `contentType must be one of ${Object.values(IMAGE_CONTENT_TYPES).join(', ')}; got "${request.contentType}"`, { argument: 'contentType' });
    }
    const { byteSize } = request;
    if (!Number.isInteger(byteSize) || byteSize < 1) throw badInput('byteSize must be a positive number of bytes', { argument: 'byteSize' });
    if (byteSize > this.settings.uploadMaxBytes) {
      throw new AppError(ErrorCode.IMAGE_TOO_LARGE, `byteSize is ${byteSize}; at most ${this.settings.uploadMaxBytes} bytes are accepted`, { argument: 'byteSize' });
    }
    const sha256 = request.sha256 === null || request.sha256 === undefined ? null : request.sha256.trim().toLowerCase();
    if (sha256 !== null && !SHA256_HEX.test(sha256)) throw badInput('sha256 must be 64 hex digits', { argument: 'sha256' });
    const expiresInSeconds = this.settings.uploadUrlExpirySeconds;
    const upload = await this.uploads.save(
      this.uploads.create({ id: randomUUID(), contentType, byteSize, sha256, requestedBy: principal.apiKeyId, expiresAt: new Date(Date.now() + expiresInSeconds * 1000) }),
    );
    return {
      uploadId: upload.id,
      url: await this.objectStore.presignPut(objectKeys.inspectionUpload(upload.id), { contentType, contentLength: byteSize, expiresInSeconds }),
      headers: [{ name: 'Content-Type', value: contentType }],
      maskUrl: null,
      maskHeaders: null,
      expiresAt: upload.expiresAt,
    };
  }

  async inspect(request: InspectRequest, principal: Principal): Promise<InspectionEntity> {
    const started = performance.now();
    const given = (value: string | null | undefined): value is string => value !== null && value !== undefined;
    if (given(request.categoryId) === given(request.modelId)) throw badInput('give exactly one of categoryId and modelId', { argument: 'input' });
    if (given(request.imageId) === given(request.uploadId)) throw badInput('give exactly one of imageId and uploadId', { argument: 'input' });
    const threshold = checkThreshold(request.threshold);

    const [model, input] = await Promise.all([this.resolveModel(request.categoryId, request.modelId), this.readInput(request, principal)]);
    const read = performance.now();
    let pending: PendingInspection;
    let result: InferenceResult;
    let prepared = 0;
    let inferred = 0;
    try {
      const [loaded, original] = await Promise.all([this.loader.ensureLoaded(model), this.decode(input.bytes)]);
      const tensor = await this.toTensor(original, loaded);
      prepared = performance.now();
      result = await this.infer(model, loaded, tensor);
      inferred = performance.now();
      pending = await this.render(model, loaded, input, original, result, threshold);
    } catch (error) {
      // Bytes that are no image make an upload useless; keep nothing of it.
      if (input.kind === 'upload' && error instanceof AppError && error.code === ErrorCode.INVALID_IMAGE) await this.discardUpload(input.upload.id);
      throw error;
    }
    const rendered = performance.now();
    const storeTimings: StoreTimings = { objectsMs: 0, insertMs: 0 };
    const [inspection] = await this.store([pending], started, principal, storeTimings);
    const round = (ms: number): number => Math.round(ms * 10) / 10;
    this.logger.debug(
      {
        inspectionId: pending.id,
        modelId: model.id,
        readMs: round(read - started),
        decodeMs: round(prepared - read),
        queueMs: round(result.timings.queueMs),
        runMs: round(result.timings.inferenceMs),
        batchSize: result.timings.batchSize,
        inferMs: round(inferred - prepared),
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
      throw new AppError(ErrorCode.BATCH_TOO_LARGE, `imageIds holds ${count} ids; at most ${this.settings.batchMaxImages} (INSPECT_BATCH_MAX_IMAGES) are inspected at once`, {
        argument: 'imageIds',
        maxImages: this.settings.batchMaxImages,
      });
    }
    const threshold = checkThreshold(request.threshold);
    const model = await this.resolveModel(request.categoryId, null);
    const images = await Promise.all(request.imageIds.map((imageId) => this.requireImage(imageId)));
    const loaded = await this.loader.ensureLoaded(model);
    const prepared = await mapConcurrently(images, BATCH_CONCURRENCY, async (image) => {
      const bytes = await this.objectStore.get(image.objectKey);
      const original = await this.decode(bytes);
      return { input: { kind: 'image' as const, image, bytes }, original, tensor: await this.toTensor(original, loaded) };
    });
    const results = await this.inferMany(model, loaded, prepared.map((item) => item.tensor));
    const pending = await mapConcurrently(prepared, BATCH_CONCURRENCY, (item, index) =>
      this.render(model, loaded, item.input, item.original, results[index] as InferenceResult, threshold),
    );
    return this.store(pending, started, principal);
  }

  private async resolveModel(categoryId: string | null | undefined, modelId: string | null | undefined): Promise<ModelVersionEntity> {
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
      const [image, bytes] = await Promise.all([this.requireImage(request.imageId), expectedKey ? this.objectStore.get(expectedKey).catch(() => null) : null]);
      return { kind: 'image', image, bytes: bytes !== null && image.objectKey === expectedKey ? bytes : await this.objectStore.get(image.objectKey) };
    }
    const uploadId = request.uploadId ?? '';
    const upload = isUuid(uploadId) ? await this.uploads.findOneBy({ id: uploadId.toLowerCase() }) : null;
    if (!upload || (upload.requestedBy !== principal.apiKeyId && !hasRole(principal, Role.ADMIN))) throw notFound('Inspection upload', uploadId);
    try {
      if (upload.expiresAt.getTime() <= Date.now()) throw new UploadRefused(ErrorCode.UPLOAD_EXPIRED, 'the upload URL has expired; request a new one');
      const key = objectKeys.inspectionUpload(upload.id);
      const arrived = await this.objectStore.head(key);
      if (!arrived) throw new AppError(ErrorCode.UPLOAD_INCOMPLETE, 'the image has not been uploaded yet; PUT it to its URL, then inspect again');
      if (arrived.size !== upload.byteSize) throw new UploadRefused(ErrorCode.CHECKSUM_MISMATCH, `the image received is ${arrived.size} bytes, but ${upload.byteSize} were declared`);
      const bytes = await this.objectStore.get(key);
      if (upload.sha256 !== null) {
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        if (sha256 !== upload.sha256) throw new UploadRefused(ErrorCode.CHECKSUM_MISMATCH, `the bytes received have SHA-256 ${sha256}, not the declared ${upload.sha256}`);
      }
      return { kind: 'upload', upload, bytes };
    } catch (error) {
      if (error instanceof UploadRefused) await this.discardUpload(upload.id);
      throw error;
    }
  }

  /**
   * To 8-bit RGB at the original size. The format is recognised by its magic bytes first, so
   * only PNG, JPEG, BMP and TIFF reach a decoder; BMP (which libvips lacks) goes through the
   * dataset module's decoder, the rest through the engine's, which matches the trainer's PIL.
   */
  private async decode(bytes: Buffer): Promise<RgbImage> {
    const format = sniffImageFormat(bytes);
    if (!format) throw new AppError(ErrorCode.INVALID_IMAGE, 'the bytes are not a PNG, JPEG, BMP or TIFF image');
    if (format === 'bmp') {
      const decoded = await decodeImageRgb(bytes, { maxPixels: this.settings.imageMaxPixels }).catch((error: unknown) => {
        throw toAppError(error);
      });
      return { data: decoded.pixels, width: decoded.info.width, height: decoded.info.height };
    }
    return decodeRgb(bytes, this.settings.imageMaxPixels);
  }

  private async toTensor(original: RgbImage, loaded: LoadedModel): Promise<Float32Array> {
    const [height, width] = loaded.inputSize;
    const resized = this.settings.resize === 'pil-bilinear' ? resizeRgbPilBilinear(original, width, height) : await resizeRgbSharpLinear(original, width, height);
    return normalizeToChw(resized, loaded.metadata.mean, loaded.metadata.std);
  }

  /** A model evicted or replaced between loading and running is loaded again, once. */
  private async infer(model: ModelVersionEntity, loaded: LoadedModel, tensor: Float32Array): Promise<InferenceResult> {
    try {
      return await this.engine.infer(loaded.key, tensor);
    } catch (error) {
      if (!(error instanceof ModelNotLoadedError)) throw error;
      const reloaded = await this.loader.ensureLoaded(model);
      return this.engine.infer(reloaded.key, tensor);
    }
  }

  private async inferMany(model: ModelVersionEntity, loaded: LoadedModel, tensors: Float32Array[]): Promise<InferenceResult[]> {
    const options = { timeoutMs: this.engine.options.requestTimeoutMs };
    try {
      return await this.engine.inferBatch(loaded.key, tensors, options);
    } catch (error) {
      if (!(error instanceof ModelNotLoadedError)) throw error;
      const reloaded = await this.loader.ensureLoaded(model);
      return this.engine.inferBatch(reloaded.key, tensors, options);
    }
  }

  private async render(
    model: ModelVersionEntity,
    loaded: LoadedModel,
    input: InspectionInput,
    original: RgbImage,
    result: InferenceResult,
    threshold: number | null,
  ): Promise<PendingInspection> {
    const [mapHeight, mapWidth] = loaded.inputSize;
    // The engine's map may be a view into its batch's buffer: keep a copy of our own.
    const anomalyMap = result.anomalyMap.slice();
    const artifacts = buildInspectionArtifacts({
      anomalyMap,
      mapWidth,
      mapHeight,
      score: result.score,
      original,
      threshold: threshold ?? model.threshold ?? loaded.metadata.proposedThreshold,
      scoreStats: loaded.metadata.scoreStats,
      mapStats: loaded.metadata.mapStats,
    });
    return { id: randomUUID(), model, input, artifacts, anomalyMap, mapWidth, mapHeight };
  }

  /**
   * Objects first (the result PNGs; an upload's bytes stored where its URL cannot overwrite
   * them), then every row in one transaction that also consumes the uploads. On failure the
   * objects are removed again. The anomaly maps follow once the inspections are answered.
   */
  private async store(pending: PendingInspection[], started: number, principal: Principal, timings?: StoreTimings): Promise<InspectionEntity[]> {
    const storeStarted = performance.now();
    const written: string[] = [];
    const put = async (key: string, body: Buffer | Promise<Buffer>, contentType = PNG): Promise<void> => {
      written.push(key);
      await this.objectStore.put(key, await body, contentType);
    };
    let inspections: InspectionEntity[];
    try {
      await mapConcurrently(pending, BATCH_CONCURRENCY, async (item) => {
        const { artifacts, input } = item;
        // Each PNG is written as soon as it is encoded.
        const writes = INSPECTION_IMAGE_KINDS.map((kind) => put(objectKeys.inspectionArtifact(item.id, kind), artifacts.pngs[kind]));
        // The bytes inspected, not a copy of the upload object: its URL could still overwrite that.
        if (input.kind === 'upload') writes.push(put(objectKeys.inspectionInput(item.id), input.bytes, input.upload.contentType));
        await Promise.all(writes);
      });
      const objectsWritten = performance.now();
      const latencyMs = objectsWritten - started;
      const uploadIds = pending.flatMap((item) => (item.input.kind === 'upload' ? [item.input.upload.id] : []));
      const insert = async (manager: EntityManager): Promise<InspectionEntity[]> => {
        if (uploadIds.length > 0) {
          const claimed = await queryRows<{ id: string }>(manager, 'DELETE FROM inspection_upload WHERE id = ANY($1::uuid[]) RETURNING id', [uploadIds]);
          if (claimed.length !== new Set(uploadIds).size) throw notFound('Inspection upload', uploadIds.join(', '));
        }
        const repository = manager.getRepository(InspectionEntity);
        const rows = pending.map((item) => {
          const { artifacts, input } = item;
          return repository.create({
            id: item.id,
            modelId: item.model.id,
            categoryId: item.model.categoryId,
            imageId: input.kind === 'image' ? input.image.id : null,
            inputObjectKey: input.kind === 'upload' ? objectKeys.inspectionInput(item.id) : null,
            width: artifacts.width,
            height: artifacts.height,
            score: artifacts.score,
            normalizedScore: artifacts.normalizedScore,
            isAnomalous: artifacts.isAnomalous,
            threshold: artifacts.threshold,
            regions: artifacts.regions.map((region) => ({ ...region })),
            latencyMs,
            heatmapObjectKey: objectKeys.inspectionArtifact(item.id, 'heatmap'),
            overlayObjectKey: objectKeys.inspectionArtifact(item.id, 'overlay'),
            maskObjectKey: objectKeys.inspectionArtifact(item.id, 'mask'),
            mapObjectKey: null,
            mapWidth: item.mapWidth,
            mapHeight: item.mapHeight,
            mapMin: null,
            mapMax: null,
            requestedBy: principal.apiKeyId,
          });
        });
        // Inserting fills in createdAt (RETURNING).
        await repository.insert(rows);
        return rows;
      };
      // One INSERT is atomic by itself; consuming uploads as well needs a transaction.
      inspections = uploadIds.length > 0 ? await this.dataSource.transaction(insert) : await insert(this.dataSource.manager);
      if (timings) {
        timings.objectsMs = objectsWritten - storeStarted;
        timings.insertMs = performance.now() - objectsWritten;
      }
    } catch (error) {
      await this.objectStore.delete(written).catch((cleanupError: unknown) => this.logger.warn({ err: cleanupError }, 'could not remove the objects of a failed inspection'));
      throw error;
    }
    const uploadKeys = pending.flatMap((item) => (item.input.kind === 'upload' ? [objectKeys.inspectionUpload(item.input.upload.id)] : []));
    if (uploadKeys.length > 0) {
      await this.objectStore.delete(uploadKeys).catch((error: unknown) => this.logger.warn({ err: error }, 'could not remove consumed inspection uploads'));
    }
    await this.keepAnomalyMaps(pending);
    for (const inspection of inspections) {
      this.pubSub.publish('INSPECTION_CREATED', { inspectionId: inspection.id, categoryId: inspection.categoryId, isAnomalous: inspection.isAnomalous });
    }
    return inspections;
  }

  /**
   * The raw anomaly maps are kept for later analysis. No response needs them, so they are
   * encoded and PUT after the inspections were answered (one S3 PUT fewer on the request path);
   * a row points at its map once the object is stored. A map that cannot be stored leaves its
   * row without one and is logged; the object of a row deleted meanwhile is removed again.
   */
  private async keepAnomalyMaps(pending: readonly PendingInspection[]): Promise<void> {
    const maps = pending.map(({ id, anomalyMap, mapWidth, mapHeight }) => ({ id, anomalyMap, mapWidth, mapHeight }));
    // setImmediate: the answer goes out before the maps are encoded and their PUTs signed.
    const write = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const stored = new Map<string, string>();
      await mapConcurrently(maps, BATCH_CONCURRENCY, async (map) => {
        const key = objectKeys.inspectionAnomalyMap(map.id);
        try {
          await this.objectStore.put(key, encodeMapObject(map.anomalyMap, map.mapWidth, map.mapHeight), MAP_OBJECT_CONTENT_TYPE);
          stored.set(map.id, key);
        } catch (error) {
          this.logger.warn({ err: error, inspectionId: map.id }, 'could not store the anomaly map of an inspection');
        }
      });
      if (stored.size === 0) return;
      let linkedIds = new Set<string>();
      try {
        const linked = await queryRows<{ id: string }>(
          this.dataSource.manager,
          'UPDATE inspection SET map_object_key = stored.key FROM unnest($1::uuid[], $2::text[]) AS stored(id, key) WHERE inspection.id = stored.id RETURNING inspection.id',
          [[...stored.keys()], [...stored.values()]],
        );
        linkedIds = new Set(linked.map((row) => row.id));
      } catch (error) {
        this.logger.warn({ err: error, inspectionIds: [...stored.keys()] }, 'could not link stored anomaly maps to their inspections');
      }
      const unlinked = [...stored].filter(([id]) => !linkedIds.has(id)).map(([, key]) => key);
      if (unlinked.length > 0) await this.objectStore.delete(unlinked);
    }).catch((error: unknown) => this.logger.warn({ err: error }, 'could not remove unlinked anomaly map objects'));
    this.mapWrites.add(write);
    void write.finally(() => this.mapWrites.delete(write));
    // The writes never reject (failures are logged above).
    while (this.mapWrites.size > MAX_TRAILING_MAP_WRITES) await Promise.race(this.mapWrites);
  }

  /** Resolves once the anomaly maps being written are stored (shutdown waits for it before the pool closes). */
  async drainAnomalyMapWrites(): Promise<void> {
    while (this.mapWrites.size > 0) await Promise.all(this.mapWrites);
  }

  async findById(id: string): Promise<InspectionEntity | null> {
    return isUuid(id) ? this.repository.findOneBy({ id: id.toLowerCase() }) : null;
  }

  async require(id: string): Promise<InspectionEntity> {
    const inspection = await this.findById(id);
    if (!inspection) throw notFound('Inspection', id);
    return inspection;
  }

  list(filter: InspectionFilter, page: PageRequest): Promise<Page<InspectionEntity>> {
    const query = this.repository.createQueryBuilder('inspection').where('TRUE');
    const uuid = (value: string, argument: string): string => {
      if (!isUuid(value)) throw badInput(`${argument} is not an id`, { argument });
      return value.toLowerCase();
    };
    if (filter.categoryId) query.andWhere('inspection.categoryId = :categoryId', { categoryId: uuid(filter.categoryId, 'filter.categoryId') });
    if (filter.modelId) query.andWhere('inspection.modelId = :modelId', { modelId: uuid(filter.modelId, 'filter.modelId') });
    if (filter.isAnomalous !== null && filter.isAnomalous !== undefined) query.andWhere('inspection.isAnomalous = :isAnomalous', { isAnomalous: filter.isAnomalous });
    if (filter.minScore !== null && filter.minScore !== undefined) {
      if (!Number.isFinite(filter.minScore)) throw badInput('filter.minScore must be a finite number', { argument: 'filter.minScore' });
      query.andWhere('inspection.score >= :minScore', { minScore: filter.minScore });
    }
    if (filter.since) query.andWhere('inspection.createdAt >= :since', { since: filter.since });
    if (filter.until) query.andWhere('inspection.createdAt < :until', { until: filter.until });
    return paginate(query, newestFirst<InspectionEntity>('inspection'), page);
  }

  /** Presigned GET of a result PNG. */
  presignedResultUrl(key: string): Promise<string> {
    return this.objectStore.presignGet(key, { contentType: PNG });
  }

  /** Presigned GET of an uploaded input, served with the type it was stored with. */
  presignedInputUrl(key: string): Promise<string> {
    return this.objectStore.presignGet(key);
  }

  async sweepExpiredUploads(): Promise<number> {
    const expired = await this.uploads.createQueryBuilder('upload').where('upload.expiresAt < now()').limit(1000).getMany();
    if (expired.length === 0) return 0;
    await this.objectStore.delete(expired.map((upload) => objectKeys.inspectionUpload(upload.id)));
    await this.uploads.delete(expired.map((upload) => upload.id));
    return expired.length;
  }

  private async discardUpload(uploadId: string): Promise<void> {
    await this.objectStore.delete([objectKeys.inspectionUpload(uploadId)]).catch(() => undefined);
    await this.uploads.delete({ id: uploadId });
  }
}
