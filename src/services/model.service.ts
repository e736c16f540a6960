import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { DataSource, EntityManager, Repository } from 'typeorm';
import { hasRole, Role, type Principal } from '../auth/principal';
import { ModelStatus, ModelUploadEntity, ModelVersionEntity } from '../db/entities/model-version.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../db/pagination';
import { AppError, badInput, ErrorCode, notFound } from '../errors';
import { InvalidModelError, type InferenceEngine, type ModelMetadata } from '../inference';
import { IMAGE_SCORE_RULE } from '../metrics';
import type { AppPubSub, Topics } from '../pubsub/pubsub';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import type { CategoryService } from './category.service';
import { isUuid, SHA256_HEX } from '../utils/ids';
import { queryRows } from '../db/sql';
import type { UploadTargetInfo } from './image-upload.service';
import type { ModelLoaderService } from './model-loader.service';

const MODEL_CONTENT_TYPE = 'application/octet-stream';
/** A VALIDATING row older than this was left by a process that stopped mid-validation. */
const ABANDONED_VALIDATION_MINUTES = 15;

export interface ModelSettings {
  maxBytes: number;
  uploadUrlExpirySeconds: number;
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
  new AppError(ErrorCode.MODEL_NOT_READY, `model ${model.name} v${model.version} is ${model.status}${model.failureReason ? ` (${model.failureReason})` : ''}; only READY models can do that`, {
    modelId: model.id,
    status: model.status,
  });

/**
 * The model registry. A version is a row first (VALIDATING), then READY or FAILED once
 * onnxruntime has checked the file against docs/model-contract.md and run one warm-up
 * inference; only READY versions are activated or served.
 */
export class ModelService {
  private readonly repository: Repository<ModelVersionEntity>;
  private readonly uploads: Repository<ModelUploadEntity>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly objectStore: ObjectStore,
    private readonly engine: InferenceEngine,
    private readonly loader: ModelLoaderService,
    private readonly categories: CategoryService,
    private readonly pubSub: AppPubSub,
    private readonly settings: ModelSettings,
    private readonly logger: Logger,
  ) {
    this.repository = dataSource.getRepository(ModelVersionEntity);
    this.uploads = dataSource.getRepository(ModelUploadEntity);
  }

  async requestUpload(request: RequestModelUpload, principal: Principal): Promise<UploadTargetInfo> {
    const { byteSize } = request;
    if (!Number.isInteger(byteSize) || byteSize < 1) throw badInput('byteSize must be a positive number of bytes', { argument: 'byteSize' });
    if (byteSize > this.settings.maxBytes) {
      throw badInput(`byteSize is ${byteSize}; models of at most ${this.settings.maxBytes} bytes (MODEL_MAX_BYTES) are accepted`, { argument: 'byteSize', maxBytes: this.settings.maxBytes });
    }
    const sha256 = request.sha256 === null || request.sha256 === undefined ? null : request.sha256.trim().toLowerCase();
    if (sha256 !== null && !SHA256_HEX.test(sha256)) throw badInput('sha256 must be 64 hex digits', { argument: 'sha256' });
    const expiresInSeconds = this.settings.uploadUrlExpirySeconds;
    const upload = await this.uploads.save(
      this.uploads.create({ id: randomUUID(), byteSize, sha256, requestedBy: principal.apiKeyId, expiresAt: new Date(Date.now() + expiresInSeconds * 1000) }),
    );
    return {
      uploadId: upload.id,
      url: await this.objectStore.presignPut(objectKeys.modelUpload(upload.id), { contentType: MODEL_CONTENT_TYPE, contentLength: byteSize, expiresInSeconds }),
      headers: [{ name: 'Content-Type', value: MODEL_CONTENT_TYPE }],
      maskUrl: null,
      maskHeaders: null,
      expiresAt: upload.expiresAt,
    };
  }

  /**
   * Stores the uploaded file as a new version and validates it before answering. Problems with
   * the request (unknown category or upload, bytes not arrived, checksum) are errors and store
   * nothing; a file that breaks the contract is a FAILED version (failureCode INVALID_MODEL),
   * returned like a READY one so that the client sees the reason.
   */
  async register(request: RegisterModelRequest, principal: Principal): Promise<ModelVersionEntity> {
    const name = checkModelName(request.name);
    const threshold = checkThreshold(request.threshold);
    const category = await this.categories.requireLive(request.categoryId);
    const snapshotId = await this.checkSnapshot(request.snapshotId, category.id);
    const upload = isUuid(request.uploadId) ? await this.uploads.findOneBy({ id: request.uploadId.toLowerCase() }) : null;
    if (!upload || (upload.requestedBy !== principal.apiKeyId && !hasRole(principal, Role.ADMIN))) {
      throw notFound('Model upload', request.uploadId);
    }
    if (upload.expiresAt.getTime() <= Date.now()) {
      await this.discardUpload(upload.id);
      throw new AppError(ErrorCode.UPLOAD_EXPIRED, 'the upload URL has expired; request a new one');
    }
    const uploadKey = objectKeys.modelUpload(upload.id);
    const arrived = await this.objectStore.head(uploadKey);
    if (!arrived) throw new AppError(ErrorCode.UPLOAD_INCOMPLETE, 'the model file has not been uploaded yet; PUT it to its URL, then register again');
    if (arrived.size !== upload.byteSize || arrived.size > this.settings.maxBytes) {
      await this.discardUpload(upload.id);
      throw new AppError(ErrorCode.CHECKSUM_MISMATCH, `the file received is ${arrived.size} bytes, but ${upload.byteSize} were declared`);
    }
    const bytes = await this.objectStore.get(uploadKey);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (upload.sha256 !== null && sha256 !== upload.sha256) {
      await this.discardUpload(upload.id);
      throw new AppError(ErrorCode.CHECKSUM_MISMATCH, `the bytes received have SHA-256 ${sha256}, not the declared ${upload.sha256}`);
    }
    const model = await this.createVersion({ categoryId: category.id, name, threshold, snapshotId, bytes, sha256, createdBy: principal.apiKeyId }, async (id, manager) => {
      await this.objectStore.copy(uploadKey, objectKeys.model(id), MODEL_CONTENT_TYPE);
      // Claiming the upload in the version's transaction: a concurrent register of it finds nothing.
      const claimed = await queryRows<{ id: string }>(manager, 'DELETE FROM model_upload WHERE id = $1 RETURNING id', [upload.id]);
      if (claimed.length === 0) throw notFound('Model upload', upload.id);
    });
    await this.objectStore.delete([uploadKey]).catch((error: unknown) => this.logger.warn({ err: error, uploadId: upload.id }, 'could not remove a consumed model upload'));
    return this.validate(model, bytes);
  }

  /** Registers bytes the service holds itself (the demo seed); validates like `register`. */
  async registerFile(file: RegisterModelFile): Promise<ModelVersionEntity> {
    const name = checkModelName(file.name);
    const threshold = checkThreshold(file.threshold);
    const category = await this.categories.requireLive(file.categoryId);
    const snapshotId = await this.checkSnapshot(file.snapshotId, category.id);
    if (file.bytes.length > this.settings.maxBytes) throw badInput(`the model file is ${file.bytes.length} bytes, more than MODEL_MAX_BYTES`);
    const sha256 = createHash('sha256').update(file.bytes).digest('hex');
    const model = await this.createVersion({ categoryId: category.id, name, threshold, snapshotId, bytes: file.bytes, sha256, createdBy: file.createdBy }, async (id) => {
      await this.objectStore.put(objectKeys.model(id), file.bytes, MODEL_CONTENT_TYPE);
    });
    return this.validate(model, file.bytes);
  }

  private async checkSnapshot(snapshotId: string | null | undefined, categoryId: string): Promise<string | null> {
    if (snapshotId === null || snapshotId === undefined) return null;
    const rows = isUuid(snapshotId)
      ? await this.dataSource.query<Array<{ id: string }>>('SELECT id FROM snapshot WHERE id = $1 AND category_id = $2', [snapshotId.toLowerCase(), categoryId])
      : [];
    if (rows.length === 0) throw notFound('Snapshot of this category', snapshotId);
    return snapshotId.toLowerCase();
  }

  /**
   * Stores the file under the new version's id (`storeFile`, inside the row's transaction) and
   * inserts the VALIDATING row with the next version number of its category and name. If
   * anything fails, the stored object is removed again.
   */
  private async createVersion(
    version: { categoryId: string; name: string; threshold: number | null; snapshotId: string | null; bytes: Buffer; sha256: string; createdBy: string | null },
    storeFile: (id: string, manager: EntityManager) => Promise<void>,
  ): Promise<ModelVersionEntity> {
    const id = randomUUID();
    const objectKey = objectKeys.model(id);
    let model: ModelVersionEntity;
    try {
      model = await this.dataSource.transaction(async (manager) => {
        // One registration at a time per category and name, so version numbers do not collide.
        await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`model_version:${version.categoryId}:${version.name}`]);
        const [{ next }] = await manager.query<Array<{ next: number }>>(
          'SELECT COALESCE(MAX(version), 0) + 1 AS next FROM model_version WHERE category_id = $1 AND name = $2',
          [version.categoryId, version.name],
        );
        await storeFile(id, manager);
        const repository = manager.getRepository(ModelVersionEntity);
        return repository.save(
          repository.create({
            id,
            categoryId: version.categoryId,
            name: version.name,
            version: Number(next),
            status: ModelStatus.VALIDATING,
            failureCode: null,
            failureReason: null,
            objectKey,
            sha256: version.sha256,
            byteSize: version.bytes.length,
            metadata: null,
            inputWidth: null,
            inputHeight: null,
            mean: null,
            std: null,
            scoreStats: null,
            mapStats: null,
            imageScoreRule: null,
            proposedThreshold: null,
            threshold: version.threshold,
            snapshotId: version.snapshotId,
            isActive: false,
            activatedAt: null,
            createdBy: version.createdBy,
            validatedAt: null,
          }),
        );
      });
    } catch (error) {
      await this.objectStore.delete([objectKey]).catch(() => undefined);
      throw error;
    }
    this.publish(model, 'REGISTERED');
    return model;
  }

  /** Loads the file in onnxruntime (contract checks and one warm-up inference) and records the outcome. */
  private async validate(model: ModelVersionEntity, bytes: Buffer): Promise<ModelVersionEntity> {
    let metadata: ModelMetadata;
    try {
      metadata = await this.engine.validateModel(bytes);
    } catch (error) {
      const code = error instanceof InvalidModelError ? ErrorCode.INVALID_MODEL : error instanceof AppError ? String(error.code) : ErrorCode.INTERNAL_SERVER_ERROR;
      if (!(error instanceof AppError)) this.logger.error({ err: error, modelId: model.id }, 'model validation failed unexpectedly');
      const reason = error instanceof AppError ? error.message : 'validation failed unexpectedly; see the service logs';
      return this.finishValidation(model, { status: ModelStatus.FAILED, failureCode: code, failureReason: reason, validatedAt: new Date() }, 'FAILED');
    }
    const [height, width] = metadata.inputSize;
    const snapshotId = model.snapshotId ?? (await this.snapshotFromMetadata(metadata, model.categoryId));
    return this.finishValidation(
      model,
      {
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
      },
      'READY',
    );
  }

  /** The training snapshot named in the metadata's training_data, when it is one of this category's. */
  private async snapshotFromMetadata(metadata: ModelMetadata, categoryId: string): Promise<string | null> {
    const trainingData = metadata.trainingData;
    if (typeof trainingData !== 'object' || trainingData === null) return null;
    const record = trainingData as Record<string, unknown>;
    const candidate = record.snapshot_id ?? record.snapshotId;
    if (typeof candidate !== 'string' || !isUuid(candidate)) return null;
    const rows = await this.dataSource.query<Array<{ id: string }>>('SELECT id FROM snapshot WHERE id = $1 AND category_id = $2', [candidate.toLowerCase(), categoryId]);
    return rows[0]?.id ?? null;
  }

  private async finishValidation(model: ModelVersionEntity, changes: Partial<ModelVersionEntity>, kind: ModelEventKind): Promise<ModelVersionEntity> {
    // Only a row still VALIDATING changes: a start-up that took it for abandoned has the last word.
    await this.repository
      .createQueryBuilder()
      .update(ModelVersionEntity)
      .set(changes)
      .where('id = :id AND status = :status', { id: model.id, status: ModelStatus.VALIDATING })
      .execute();
    const updated = await this.repository.findOneByOrFail({ id: model.id });
    if (updated.status !== ModelStatus.VALIDATING) this.publish(updated, kind);
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
    const activated = await this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`model_version:activate:${model.categoryId}`]);
      await manager.query('UPDATE model_version SET is_active = false WHERE category_id = $1 AND is_active AND id <> $2', [model.categoryId, model.id]);
      const rows = await queryRows<{ id: string }>(
        manager,
        `UPDATE model_version SET is_active = true, activated_at = now() WHERE id = $1 AND status = 'READY' RETURNING id`,
        [model.id],
      );
      if (rows.length === 0) throw notFound('Model', id);
      return manager.getRepository(ModelVersionEntity).findOneByOrFail({ id: model.id });
    });
    this.publish(activated, 'ACTIVATED');
    return activated;
  }

  async setThreshold(id: string, threshold: number): Promise<ModelVersionEntity> {
    const value = checkThreshold(threshold) as number;
    const model = await this.require(id);
    if (model.status !== ModelStatus.READY) throw modelNotReady(model);
    await this.repository.update({ id: model.id }, { threshold: value });
    const updated = await this.repository.findOneByOrFail({ id: model.id });
    this.publish(updated, 'THRESHOLD_CHANGED');
    return updated;
  }

  private publish(model: ModelVersionEntity, kind: ModelEventKind): void {
    this.pubSub.publish('MODEL_VERSION_CHANGED', { modelId: model.id, categoryId: model.categoryId, kind, status: model.status });
  }

  async findById(id: string): Promise<ModelVersionEntity | null> {
    return isUuid(id) ? this.repository.findOneBy({ id: id.toLowerCase() }) : null;
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
    const rows = await this.repository
      .createQueryBuilder('model')
      .where('model.categoryId IN (:...ids) AND model.isActive', { ids })
      .getMany();
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
    const active = isUuid(categoryId)
      ? await this.repository
          .createQueryBuilder('model')
          .innerJoin('model.category', 'category', 'category.deletedAt IS NULL')
          .where('model.categoryId = :categoryId AND model.isActive', { categoryId: categoryId.toLowerCase() })
          .getOne()
      : null;
    if (active) return active;
    const category = await this.categories.requireLive(categoryId);
    throw new AppError(ErrorCode.NO_ACTIVE_MODEL, `category ${category.name} has no active model; register one and activateModel it, or pass modelId`, { categoryId: category.id });
  }

  async list(categoryId: string, page: PageRequest): Promise<Page<ModelVersionEntity>> {
    await this.categories.requireLive(categoryId);
    return paginate(
      this.repository.createQueryBuilder('model').where('model.categoryId = :categoryId', { categoryId: categoryId.toLowerCase() }),
      newestFirst<ModelVersionEntity>('model'),
      page,
    );
  }

  /** At start: versions left VALIDATING by a process that stopped mid-validation become FAILED. */
  async failAbandonedValidations(): Promise<number> {
    const rows = await queryRows<{ id: string; category_id: string }>(
      this.dataSource.manager,
      `UPDATE model_version
          SET status = 'FAILED', failure_code = 'VALIDATION_INTERRUPTED', validated_at = now(),
              failure_reason = 'validation was interrupted (the server stopped); register the file again'
        WHERE status = 'VALIDATING' AND created_at < now() - make_interval(mins => $1)
        RETURNING id, category_id`,
      [ABANDONED_VALIDATION_MINUTES],
    );
    for (const row of rows) {
      this.pubSub.publish('MODEL_VERSION_CHANGED', { modelId: row.id, categoryId: row.category_id, kind: 'FAILED', status: 'FAILED' });
    }
    return rows.length;
  }

  /** Pending uploads past their expiry: objects first, so a failure leaves the rows for the next sweep. */
  async sweepExpiredUploads(): Promise<number> {
    const expired = await this.uploads.createQueryBuilder('upload').where('upload.expiresAt < now()').limit(1000).getMany();
    if (expired.length === 0) return 0;
    await this.objectStore.delete(expired.map((upload) => objectKeys.modelUpload(upload.id)));
    await this.uploads.delete(expired.map((upload) => upload.id));
    return expired.length;
  }

  private async discardUpload(uploadId: string): Promise<void> {
    await this.objectStore.delete([objectKeys.modelUpload(uploadId)]);
    await this.uploads.delete({ id: uploadId });
  }
}
