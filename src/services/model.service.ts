import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal';
import { ModelStatus, type ModelUploadEntity, type ModelVersionEntity } from '../db/entities/model-version.entity';
import type { Page, PageRequest } from '../db/pagination';
import type { Database, Repositories } from '../db/repositories';
import type { ValidationOutcome } from '../db/repositories/model.repository';
import { AppError, badInput, ErrorCode, notFound } from '../errors';
import { InvalidModelError, type ModelMetadata } from '../inference';
import { IMAGE_SCORE_RULE } from '../metrics';
import type { AppPubSub, Topics } from '../pubsub/pubsub';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { isUuid } from '../utils/ids';
import { AccuracyGuard, isQuantized } from './accuracy-guard.service';
import type { CategoryService } from './category.service';
import type { ModelLoaderService } from './model-loader.service';
import { PresignedUploads, type UploadKind, type UploadTargetInfo } from './presigned-upload.service';
import type { SnapshotService } from './snapshot.service';

const MODEL_CONTENT_TYPE = 'application/octet-stream';
/** A VALIDATING row older than this was left by a process that stopped mid-validation. */
const ABANDONED_VALIDATION_MINUTES = 15;

export interface ModelSettings {
  maxBytes: number;
  uploadUrlExpirySeconds: number;
  /** MODEL_ACCURACY_TOLERANCE_POINTS: the largest metric drop the INT8 accuracy guard allows. */
  accuracyTolerancePoints: number;
}

export interface RequestModelUpload {
  byteSize: number;
  sha256?: string | null;
}

export interface RegisterModelRequest {
  categoryId: string;
  name: string;
  uploadId: string;
  threshold?: number | null;
  snapshotId?: string | null;
}

/** A registration from bytes the service already holds (the demo seed). */
export interface RegisterModelFile {
  categoryId: string;
  name: string;
  bytes: Buffer;
  threshold?: number | null;
  snapshotId?: string | null;
  createdBy: string | null;
}

type ModelEventKind = Topics['MODEL_VERSION_CHANGED'][0]['kind'];

export function checkModelName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 100 || /[\p{Cc}]/u.test(trimmed)) {
    throw badInput('name must be 1 to 100 printable characters', { argument: 'name' });
  }
  return trimmed;
}

export function checkThreshold(threshold: number | null | undefined, argument = 'threshold'): number | null {
  if (threshold === null || threshold === undefined) return null;
  if (!Number.isFinite(threshold)) throw badInput(`${argument} must be a finite number`, { argument });
  return threshold;
}

export const modelNotReady = (model: ModelVersionEntity): AppError =>
  new AppError(
    ErrorCode.MODEL_NOT_READY,
    `model ${model.name} v${model.version} is ${model.status}${model.failureReason ? ` (${model.failureReason})` : ''}; only READY models can do that`,
    {
      modelId: model.id,
      status: model.status,
    },
  );

/** ONNX files uploaded for registerModel: one object each, of a fixed content type. */
function modelUploadKind(settings: ModelSettings): UploadKind<ModelUploadEntity> {
  return {
    label: 'model upload',
    repository: (repositories) => repositories.modelUploads,
    file: {
      key: objectKeys.modelUpload,
      contentType: () => MODEL_CONTENT_TYPE,
      byteSize: (upload) => upload.byteSize,
      noun: 'file',
      notArrived: 'the model file has not been uploaded yet; PUT it to its URL, then register again',
    },
    maxBytes: settings.maxBytes,
    urlExpirySeconds: settings.uploadUrlExpirySeconds,
    read: { mode: 'whole' },
    tooLarge: (byteSize, argument) =>
      badInput(
        `${argument} is ${byteSize}; models of at most ${settings.maxBytes} bytes (MODEL_MAX_BYTES) are accepted`,
        {
          argument,
          maxBytes: settings.maxBytes,
        },
      ),
  };
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The model registry. A version is a row first (VALIDATING), then READY or FAILED once
 * onnxruntime has checked the file against docs/model-contract.md and run one warm-up
 * inference; only READY versions are activated or served. An INT8 file (metadata
 * `quantization`) in a category with a SUCCEEDED evaluation of an fp32 version stays VALIDATING
 * until its accuracy guard has compared it on the same snapshot (`accuracyGuard`).
 */
export class ModelService {
  private readonly uploads: PresignedUploads<ModelUploadEntity>;
  /** The INT8 versions' accuracy guard; the evaluation runner reports the guard evaluations' ends to it. */
  readonly accuracyGuard: AccuracyGuard;

  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly loader: ModelLoaderService,
    private readonly categories: CategoryService,
    private readonly snapshots: SnapshotService,
    private readonly pubSub: AppPubSub,
    private readonly settings: ModelSettings,
    private readonly logger: Logger,
  ) {
    this.uploads = new PresignedUploads(db, objectStore, modelUploadKind(settings), logger);
    this.accuracyGuard = new AccuracyGuard(
      db,
      settings.accuracyTolerancePoints,
      {
        readyOutcome: (model, metadata) => this.readyOutcome(model, metadata),
        publishOutcome: (model, kind) => this.publish(model, kind),
      },
      logger,
    );
  }

  requestUpload(request: RequestModelUpload, principal: Principal): Promise<UploadTargetInfo> {
    const byteSize = this.uploads.checkByteSize(request.byteSize);
    const sha256 = this.uploads.checkSha256(request.sha256);
    return this.uploads.open({ byteSize, sha256, requestedBy: principal.apiKeyId });
  }

  /**
   * Stores the uploaded file as a new version and validates it before answering. Problems with
   * the request (unknown category or upload, bytes not arrived, checksum) are errors and store
   * nothing; a file that breaks the contract is a FAILED version (failureCode INVALID_MODEL),
   * returned like a READY one so that the client sees the reason. An INT8 file whose accuracy
   * guard was queued comes back VALIDATING; its outcome follows as a modelVersionChanged event.
   */
  async register(request: RegisterModelRequest, principal: Principal): Promise<ModelVersionEntity> {
    const name = checkModelName(request.name);
    const threshold = checkThreshold(request.threshold);
    const category = await this.categories.requireLive(request.categoryId);
    const snapshotId = await this.checkSnapshot(request.snapshotId, category.id);
    const upload = await this.uploads.findOwned(request.uploadId, principal);
    if (!upload) throw notFound('Model upload', request.uploadId);
    const received = await this.uploads.receive(upload);
    const { bytes } = received;
    const sha256 = received.sha256 ?? sha256Hex(bytes);
    const version = {
      categoryId: category.id,
      name,
      threshold,
      snapshotId,
      bytes,
      sha256,
      createdBy: principal.apiKeyId,
    };
    const model = await this.createVersion(version, async (id, tx) => {
      await this.objectStore.copy(this.uploads.objectKey(upload.id), objectKeys.model(id), MODEL_CONTENT_TYPE);
      // Claiming the upload in the version's transaction: a concurrent register of it finds nothing.
      if (!(await this.uploads.claim(tx, [upload.id]))) throw notFound('Model upload', upload.id);
    });
    await this.uploads.removeConsumed([upload.id]);
    return this.validate(model, bytes);
  }

  /** Registers bytes the service holds itself (the demo seed); validates like `register`. */
  async registerFile(file: RegisterModelFile): Promise<ModelVersionEntity> {
    const name = checkModelName(file.name);
    const threshold = checkThreshold(file.threshold);
    const category = await this.categories.requireLive(file.categoryId);
    const snapshotId = await this.checkSnapshot(file.snapshotId, category.id);
    if (file.bytes.length > this.settings.maxBytes)
      throw badInput(`the model file is ${file.bytes.length} bytes, more than MODEL_MAX_BYTES`);
    const sha256 = sha256Hex(file.bytes);
    const model = await this.createVersion(
      { categoryId: category.id, name, threshold, snapshotId, bytes: file.bytes, sha256, createdBy: file.createdBy },
      async (id) => {
        await this.objectStore.put(objectKeys.model(id), file.bytes, MODEL_CONTENT_TYPE);
      },
    );
    return this.validate(model, file.bytes);
  }

  private async checkSnapshot(snapshotId: string | null | undefined, categoryId: string): Promise<string | null> {
    if (snapshotId === null || snapshotId === undefined) return null;
    const id = await this.snapshotOfCategory(snapshotId, categoryId);
    if (!id) throw notFound('Snapshot of this category', snapshotId);
    return id;
  }

  /** The snapshot's id (lowercase) if it is one of the category's; null otherwise. */
  private async snapshotOfCategory(snapshotId: string, categoryId: string): Promise<string | null> {
    const snapshot = isUuid(snapshotId) ? await this.snapshots.findById(snapshotId.toLowerCase()) : null;
    return snapshot && snapshot.categoryId === categoryId ? snapshot.id : null;
  }

  /**
   * Stores the file under the new version's id (`storeFile`, inside the row's transaction) and
   * inserts the VALIDATING row with the next version number of its category and name. If
   * anything fails, the stored object is removed again.
   */
  private async createVersion(
    version: {
      categoryId: string;
      name: string;
      threshold: number | null;
      snapshotId: string | null;
      bytes: Buffer;
      sha256: string;
      createdBy: string | null;
    },
    storeFile: (id: string, tx: Repositories) => Promise<void>,
  ): Promise<ModelVersionEntity> {
    const id = randomUUID();
    const objectKey = objectKeys.model(id);
    let model: ModelVersionEntity;
    try {
      model = await this.db.transaction(async (tx) => {
        const next = await tx.models.lockNextVersion(version.categoryId, version.name);
        await storeFile(id, tx);
        return tx.models.insertValidating({
          id,
          categoryId: version.categoryId,
          name: version.name,
          version: next,
          objectKey,
          sha256: version.sha256,
          byteSize: version.bytes.length,
          threshold: version.threshold,
          snapshotId: version.snapshotId,
          createdBy: version.createdBy,
        });
      });
    } catch (error) {
      await this.objectStore.delete([objectKey]).catch(() => undefined);
      throw error;
    }
    this.publish(model, 'REGISTERED');
    return model;
  }

  /**
   * Checks the file (contract checks before and in onnxruntime, and one warm-up inference
   * within MODEL_WARMUP_TIMEOUT_MS) and records the outcome; for an INT8 file with a reference
   * evaluation in its category, queues its accuracy guard instead and leaves it VALIDATING.
   */
  private async validate(model: ModelVersionEntity, bytes: Buffer): Promise<ModelVersionEntity> {
    let metadata: ModelMetadata;
    try {
      metadata = await this.loader.validate(bytes);
    } catch (error) {
      const code =
        error instanceof InvalidModelError
          ? ErrorCode.INVALID_MODEL
          : error instanceof AppError
            ? String(error.code)
            : ErrorCode.INTERNAL_SERVER_ERROR;
      if (!(error instanceof AppError))
        this.logger.error({ err: error, modelId: model.id }, 'model validation failed unexpectedly');
      const reason = error instanceof AppError ? error.message : 'validation failed unexpectedly; see the service logs';
      return this.finishValidation(
        model,
        { status: ModelStatus.FAILED, failureCode: code, failureReason: reason, validatedAt: new Date() },
        'FAILED',
      );
    }
    if (isQuantized(metadata.props)) {
      try {
        if (await this.accuracyGuard.start(model)) return await this.db.models.get(model.id);
      } catch (error) {
        this.logger.error({ err: error, modelId: model.id }, 'could not queue the accuracy guard of an INT8 model');
        return this.finishValidation(
          model,
          {
            status: ModelStatus.FAILED,
            failureCode: ErrorCode.INTERNAL_SERVER_ERROR,
            failureReason: 'the accuracy guard could not be queued; see the service logs',
            validatedAt: new Date(),
          },
          'FAILED',
        );
      }
    }
    return this.finishValidation(model, await this.readyOutcome(model, metadata), 'READY');
  }

  /** What a READY version of this file records: its metadata, input size, statistics and thresholds. */
  private async readyOutcome(model: ModelVersionEntity, metadata: ModelMetadata): Promise<ValidationOutcome> {
    const [height, width] = metadata.inputSize;
    const snapshotId = model.snapshotId ?? (await this.snapshotFromMetadata(metadata, model.categoryId));
    return {
      status: ModelStatus.READY,
      metadata: { ...metadata.props },
      inputWidth: width,
      inputHeight: height,
      mean: [...metadata.mean],
      std: [...metadata.std],
      scoreStats: { ...metadata.scoreStats },
      mapStats: { ...metadata.mapStats },
      imageScoreRule: metadata.props.image_score_rule ?? IMAGE_SCORE_RULE,
      proposedThreshold: metadata.proposedThreshold,
      threshold: model.threshold ?? metadata.proposedThreshold,
      snapshotId,
      validatedAt: new Date(),
    };
  }

  /** The training snapshot named in the metadata's training_data, when it is one of this category's. */
  private async snapshotFromMetadata(metadata: ModelMetadata, categoryId: string): Promise<string | null> {
    const trainingData = metadata.trainingData;
    if (typeof trainingData !== 'object' || trainingData === null) return null;
    const record = trainingData as Record<string, unknown>;
    const candidate = record.snapshot_id ?? record.snapshotId;
    if (typeof candidate !== 'string') return null;
    return this.snapshotOfCategory(candidate, categoryId);
  }

  private async finishValidation(
    model: ModelVersionEntity,
    outcome: ValidationOutcome,
    kind: ModelEventKind,
  ): Promise<ModelVersionEntity> {
    // Only a row still VALIDATING changes: a start-up that took it for abandoned has the last word.
    const changed = await this.db.models.finishValidation(model.id, outcome);
    const updated = await this.db.models.get(model.id);
    if (changed) this.publish(updated, kind);
    return updated;
  }

  /**
   * Makes a READY version the one `inspect` uses for its category. It is loaded and warmed up
   * in this process first (a file that cannot be served is never activated); other processes
   * load it when they receive the event.
   */
  async activate(id: string): Promise<ModelVersionEntity> {
    const model = await this.require(id);
    if (model.status !== ModelStatus.READY) throw modelNotReady(model);
    if (model.isActive) return model;
    await this.loader.ensureLoaded(model);
    const activated = await this.db.transaction(async (tx) => {
      await tx.models.lockActivation(model.categoryId);
      await tx.models.deactivateOthers(model.categoryId, model.id);
      if (!(await tx.models.markActive(model.id))) throw notFound('Model', id);
      return tx.models.get(model.id);
    });
    this.publish(activated, 'ACTIVATED');
    return activated;
  }

  async setThreshold(id: string, threshold: number): Promise<ModelVersionEntity> {
    const value = checkThreshold(threshold) as number;
    const model = await this.require(id);
    if (model.status !== ModelStatus.READY) throw modelNotReady(model);
    await this.db.models.setThreshold(model.id, value);
    const updated = await this.db.models.get(model.id);
    this.publish(updated, 'THRESHOLD_CHANGED');
    return updated;
  }

  private publish(model: ModelVersionEntity, kind: ModelEventKind): void {
    this.pubSub.publish('MODEL_VERSION_CHANGED', {
      modelId: model.id,
      categoryId: model.categoryId,
      kind,
      status: model.status,
    });
  }

  async findById(id: string): Promise<ModelVersionEntity | null> {
    return isUuid(id) ? this.db.models.findById(id.toLowerCase()) : null;
  }

  async require(id: string): Promise<ModelVersionEntity> {
    const model = await this.findById(id);
    if (!model) throw notFound('Model', id);
    return model;
  }

  /** The active version of each category asked for (null where none), in one query. */
  async activeByCategories(categoryIds: readonly string[]): Promise<Map<string, ModelVersionEntity>> {
    const ids = categoryIds.filter(isUuid);
    if (ids.length === 0) return new Map();
    const rows = await this.db.models.findActiveOfCategories(ids);
    return new Map(rows.map((row) => [row.categoryId, row]));
  }

  async activeForCategory(categoryId: string): Promise<ModelVersionEntity | null> {
    return (await this.activeByCategories([categoryId])).get(categoryId) ?? null;
  }

  /**
   * The active version `inspect(categoryId)` uses: NOT_FOUND for a missing or deleted category,
   * NO_ACTIVE_MODEL when it has none. One query on the hot path; the category is looked up
   * alone only to tell the two errors apart.
   */
  async requireActiveForCategory(categoryId: string): Promise<ModelVersionEntity> {
    const active = isUuid(categoryId) ? await this.db.models.findActiveOfLiveCategory(categoryId.toLowerCase()) : null;
    if (active) return active;
    const category = await this.categories.requireLive(categoryId);
    throw new AppError(
      ErrorCode.NO_ACTIVE_MODEL,
      `category ${category.name} has no active model; register one and activateModel it, or pass modelId`,
      { categoryId: category.id },
    );
  }

  async list(categoryId: string, page: PageRequest): Promise<Page<ModelVersionEntity>> {
    await this.categories.requireLive(categoryId);
    return this.db.models.pageOfCategory(categoryId.toLowerCase(), page);
  }

  /**
   * At start: versions left VALIDATING by a process that stopped mid-validation become FAILED;
   * not those whose accuracy guard evaluation is still QUEUED or RUNNING.
   */
  async failAbandonedValidations(): Promise<number> {
    const failed = await this.db.models.failValidationsOlderThan(ABANDONED_VALIDATION_MINUTES);
    for (const model of failed) {
      this.pubSub.publish('MODEL_VERSION_CHANGED', {
        modelId: model.id,
        categoryId: model.categoryId,
        kind: 'FAILED',
        status: 'FAILED',
      });
    }
    return failed.length;
  }

  /** Pending uploads past their expiry: objects first, so a failure leaves the rows for the next sweep. */
  sweepExpiredUploads(): Promise<number> {
    return this.uploads.sweepExpired();
  }
}
