import { setMaxListeners } from 'node:events';
import { S3ServiceException } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { EvaluationEntity, EvaluationStatus } from '../db/entities/evaluation.entity';
import { ImageSplit, type ImageEntity } from '../db/entities/image.entity';
import { ModelStatus, ModelVersionEntity } from '../db/entities/model-version.entity';
import { AppError } from '../errors';
import { decodeImageRgb, ImageValidationError } from '../images/image-bytes';
import { decodeRgb, EngineClosedError, ModelNotLoadedError, normalizeToChw, resizeRgbPilBilinear, resizeRgbSharpLinear, type InferenceEngine, type InferenceResult, type LoadedModel, type ResizeMethod } from '../inference';
import { JobInterruptedError, type JobContext, type JobQueue, type QueueDefinition } from '../jobs/job-queue';
import { IMAGE_SCORE_RULE, imageScoresFromMaps } from '../metrics';
import type { AppPubSub } from '../pubsub/pubsub';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { mapConcurrently } from '../utils/concurrency';
import { queryRows } from '../db/sql';
import { DEFAULT_CURVE_POINTS, maskLabel, resizeMaskNearest, type EvaluatedImage, type EvaluationMetrics } from '../metrics/evaluation-metrics';
import { computeMetricsInWorker } from '../metrics/evaluation-metrics-thread';
import { decodeMapObject, encodeMapObject, MAP_OBJECT_CONTENT_TYPE } from '../formats/anomaly-map-object';
import type { ModelLoaderService } from './model-loader.service';
import type { SnapshotService } from './snapshot.service';

export const EVALUATION_QUEUE = 'model-evaluation';

export interface EvaluationJobPayload {
  evaluationId: string;
}

export interface EvaluationRunnerSettings {
  batchSize: number;
  jobExpireSeconds: number;
  resize: ResizeMethod;
  imageMaxPixels: number;
}

/** How a delivery waits for an evaluation's lock (held briefly by a recovery, or for long by a live runner). */
const LOCK_WAIT_MS = 10_000;
/** Images read and decoded, or maps written and read back, at once. */
const IO_CONCURRENCY = 6;
/** Progress events: at most one a second per evaluation (status changes go out at once). */
const PROGRESS_INTERVAL_MS = 1000;

/** Ends the evaluation FAILED with this message; retrying would not help. */
class EvaluationFailure extends Error {
  override readonly name = 'EvaluationFailure';
}

/** The row is no longer RUNNING here (cancelled, or deleted with its model or category): stop quietly. */
class EvaluationStopped extends Error {
  override readonly name = 'EvaluationStopped';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isMissingObject(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.name === 'NoSuchKey' || error.$metadata.httpStatusCode === 404);
}

/** Publishes at most once per interval (a trailing event carries the last change), status changes at once. */
class ProgressPublisher {
  private lastPublished = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly publish: () => void) {}

  changed(): void {
    if (this.timer) return;
    const wait = this.lastPublished + PROGRESS_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.now();
      return;
    }
    this.timer = setTimeout(() => this.now(), wait);
    this.timer.unref();
  }

  now(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.lastPublished = Date.now();
    this.publish();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

interface PreparedImage {
  image: ImageEntity;
  tensor: Float32Array;
}

interface ImageResult {
  imageId: string;
  score: number;
  mapObjectKey: string;
}

/**
 * Runs evaluation jobs: every TEST image of the snapshot through the model in batches, each
 * image's map stored in S3 and its score in evaluation_image_result (an upsert by
 * (evaluation, image), so a run resumed after a crash redoes at most the batch in flight and
 * counts nothing twice), then the metrics from the stored maps. One runner per evaluation at a
 * time, across processes, by an advisory lock that PostgreSQL drops with a dead process.
 */
export class EvaluationRunner {
  /** Evaluations this process is running, so that stopping can hand them back first. */
  private readonly running = new Map<string, { stopping: AbortController; done: Promise<void> }>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly objectStore: ObjectStore,
    private readonly jobQueue: JobQueue,
    private readonly pubSub: AppPubSub,
    private readonly engine: InferenceEngine,
    private readonly loader: ModelLoaderService,
    private readonly snapshots: SnapshotService,
    private readonly settings: EvaluationRunnerSettings,
    private readonly logger: Logger,
  ) {}

  queueDefinition(): QueueDefinition<EvaluationJobPayload> {
    return {
      name: EVALUATION_QUEUE,
      concurrency: 1,
      retryLimit: 2,
      retryDelaySeconds: 10,
      // A backstop only: a dead runner is found within EVALUATION_RECOVERY_INTERVAL_SECONDS by recoverAbandoned.
      expireInSeconds: this.settings.jobExpireSeconds,
      handle: (payload, context) => this.runJob(payload, context),
    };
  }

  publish(evaluationId: string): void {
    this.pubSub.publish('EVALUATION_UPDATED', evaluationId, { evaluationId });
  }

  /**
   * Queues again the evaluations marked RUNNING whose runner is gone (its process died, so
   * PostgreSQL dropped its lock). Run when workers start and periodically.
   */
  async recoverAbandoned(): Promise<number> {
    const running = await this.dataSource.query<Array<{ id: string }>>(`SELECT id FROM evaluation WHERE status = 'RUNNING'`);
    let recovered = 0;
    for (const { id } of running) {
      if (this.running.has(id)) continue;
      const lock = await this.jobQueue.lock(`evaluation:${id}`, 0);
      if (!lock) continue;
      try {
        const requeued = await this.dataSource.transaction(async (manager) => {
          const rows = await queryRows<{ id: string }>(manager, `UPDATE evaluation SET status = 'QUEUED', updated_at = now() WHERE id = $1 AND status = 'RUNNING' RETURNING id`, [id]);
          if (rows.length === 0) return false;
          const payload: EvaluationJobPayload = { evaluationId: id };
          await this.jobQueue.send(EVALUATION_QUEUE, payload, manager);
          return true;
        });
        if (requeued) {
          recovered += 1;
          this.logger.warn({ evaluationId: id }, 'evaluation was left running by a process that stopped; queued again');
          this.publish(id);
        }
      } finally {
        await lock.release();
      }
    }
    if (recovered > 0) this.jobQueue.wake(EVALUATION_QUEUE);
    return recovered;
  }

  /** Aborts this process's runs and waits until each has handed its evaluation back (QUEUED). */
  async stop(): Promise<void> {
    const runs = [...this.running.values()];
    for (const run of runs) run.stopping.abort();
    await Promise.all(runs.map((run) => run.done));
  }

  private async runJob(payload: EvaluationJobPayload, context: JobContext): Promise<void> {
    const stopping = new AbortController();
    const run = this.run(payload.evaluationId, context, stopping);
    const done = run.then(
      () => undefined,
      () => undefined,
    );
    this.running.set(payload.evaluationId, { stopping, done });
    try {
      await run;
    } finally {
      this.running.delete(payload.evaluationId);
    }
  }

  private async run(evaluationId: string, context: JobContext, stopping: AbortController): Promise<void> {
    const lock = await this.jobQueue.lock(`evaluation:${evaluationId}`, LOCK_WAIT_MS);
    // Another process is running it (a duplicate delivery): that run finishes it.
    if (!lock) return;
    const cancelled = new AbortController();
    const onProcessStop = (): void => stopping.abort();
    context.signal.addEventListener('abort', onProcessStop);
    if (context.signal.aborted) stopping.abort();
    const progress = new ProgressPublisher(() => this.publish(evaluationId));
    const watcher = this.watchForCancellation(evaluationId, cancelled);
    try {
      const rows = await queryRows<{ id: string }>(
        this.dataSource.manager,
        `UPDATE evaluation SET status = 'RUNNING', attempts = attempts + 1, started_at = coalesce(started_at, now()), error = NULL, updated_at = now()
          WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING id`,
        [evaluationId],
      );
      if (rows.length === 0) return;
      progress.now();
      try {
        const evaluation = await this.dataSource.getRepository(EvaluationEntity).findOneBy({ id: evaluationId });
        if (!evaluation) throw new EvaluationStopped();
        const signal = AbortSignal.any([stopping.signal, cancelled.signal]);
        // Every image of a batch in flight listens to it.
        setMaxListeners(0, signal);
        await this.evaluate(evaluation, signal, progress);
      } catch (error) {
        await this.settle(evaluationId, error, { stopping: stopping.signal.aborted, cancelled: cancelled.signal.aborted, isLastAttempt: context.isLastAttempt });
      }
    } finally {
      context.signal.removeEventListener('abort', onProcessStop);
      progress.close();
      await watcher.stop();
      await lock.release();
    }
  }

  /** What an evaluation that stopped early becomes. Throws to hand the job back to the queue. */
  private async settle(evaluationId: string, error: unknown, state: { stopping: boolean; cancelled: boolean; isLastAttempt: boolean }): Promise<void> {
    if (error instanceof EvaluationStopped || state.cancelled) return;
    if (state.stopping || error instanceof EngineClosedError || error instanceof JobInterruptedError) {
      await this.requeue(evaluationId);
      throw new JobInterruptedError();
    }
    if (error instanceof EvaluationFailure) {
      await this.fail(evaluationId, error.message);
      return;
    }
    this.logger.error({ err: error, evaluationId }, 'evaluation failed unexpectedly');
    if (state.isLastAttempt) {
      await this.fail(evaluationId, `the evaluation failed: ${describe(error)}`);
      return;
    }
    await this.requeue(evaluationId).catch(() => undefined);
    throw error;
  }

  private async requeue(evaluationId: string): Promise<void> {
    await this.dataSource.query(`UPDATE evaluation SET status = 'QUEUED', updated_at = now() WHERE id = $1 AND status = 'RUNNING'`, [evaluationId]);
    this.publish(evaluationId);
  }

  private async fail(evaluationId: string, message: string): Promise<void> {
    this.logger.warn({ evaluationId, reason: message }, 'evaluation failed');
    await this.dataSource.query(`UPDATE evaluation SET status = 'FAILED', error = $2, finished_at = now(), updated_at = now() WHERE id = $1 AND status = 'RUNNING'`, [
      evaluationId,
      message,
    ]);
    this.publish(evaluationId);
  }

  /**
   * Follows the evaluation's events (from any process) and aborts the run as soon as its row
   * says CANCELLED, so a cancel does not wait for the batch in flight.
   */
  private watchForCancellation(evaluationId: string, cancelled: AbortController): { stop(): Promise<void> } {
    const iterator = this.pubSub.subscribe('EVALUATION_UPDATED', evaluationId)[Symbol.asyncIterator]();
    let stopped = false;
    const done = (async () => {
      for (;;) {
        const next = await iterator.next().catch(() => ({ done: true as const, value: undefined }));
        if (next.done || stopped) return;
        const rows = await this.dataSource.query<Array<{ status: EvaluationStatus }>>('SELECT status FROM evaluation WHERE id = $1', [evaluationId]).catch(() => null);
        if (rows && (rows.length === 0 || rows[0]?.status === EvaluationStatus.CANCELLED)) {
          cancelled.abort();
          return;
        }
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await iterator.return?.();
        await done;
      },
    };
  }

  private async evaluate(evaluation: EvaluationEntity, signal: AbortSignal, progress: ProgressPublisher): Promise<void> {
    if (!evaluation.snapshotId) throw new EvaluationFailure('its snapshot was deleted');
    const model = await this.dataSource.getRepository(ModelVersionEntity).findOneBy({ id: evaluation.modelId });
    if (!model) throw new EvaluationStopped();
    if (model.status !== ModelStatus.READY) throw new EvaluationFailure(`model ${model.name} v${model.version} is ${model.status}; only READY models can be evaluated`);
    const images = (await this.snapshots.listSnapshotImages(evaluation.snapshotId)).filter((image) => image.split === ImageSplit.TEST);
    if (images.length !== evaluation.total) throw new EvaluationFailure(`the snapshot lists ${images.length} TEST images, ${evaluation.total} when the evaluation started`);

    let loaded = await this.loadModel(model);
    const [height, width] = loaded.inputSize;
    const done = new Set(
      (await this.dataSource.query<Array<{ image_id: string }>>('SELECT image_id FROM evaluation_image_result WHERE evaluation_id = $1', [evaluation.id])).map((row) => row.image_id),
    );
    const pending = images.filter((image) => !done.has(image.id));
    const batches: ImageEntity[][] = [];
    for (let start = 0; start < pending.length; start += this.settings.batchSize) batches.push(pending.slice(start, start + this.settings.batchSize));

    // One batch is read and decoded while the previous one runs through the model.
    const prepare = (batch: ImageEntity[]): Promise<PreparedImage[]> => {
      const prepared = mapConcurrently(batch, IO_CONCURRENCY, (image) => this.prepareImage(image, loaded, signal));
      prepared.catch(() => undefined);
      return prepared;
    };
    let next = batches.length > 0 ? prepare(batches[0] as ImageEntity[]) : null;
    for (let index = 0; index < batches.length; index += 1) {
      if (signal.aborted) throw new JobInterruptedError();
      await this.assertRunning(evaluation.id);
      const prepared = await (next as Promise<PreparedImage[]>);
      next = index + 1 < batches.length ? prepare(batches[index + 1] as ImageEntity[]) : null;
      const tensors = prepared.map((item) => item.tensor);
      let results: InferenceResult[];
      try {
        results = await this.infer(loaded, tensors, signal);
      } catch (error) {
        if (!(error instanceof ModelNotLoadedError)) throw this.inferenceFailure(error, signal);
        // Evicted or replaced meanwhile: load it again, once.
        loaded = await this.loadModel(model);
        results = await this.infer(loaded, tensors, signal).catch((retryError: unknown) => {
          throw this.inferenceFailure(retryError, signal);
        });
      }
      const written = await this.storeMaps(evaluation.id, prepared, results, width, height);
      await this.recordResults(evaluation.id, written);
      progress.changed();
    }

    if (signal.aborted) throw new JobInterruptedError();
    await this.assertRunning(evaluation.id);
    const metrics = await this.computeMetrics(evaluation, images, width, height);
    await this.succeed(evaluation.id, metrics, width, height);
    progress.now();
  }

  private async loadModel(model: ModelVersionEntity): Promise<LoadedModel> {
    try {
      return await this.loader.ensureLoaded(model);
    } catch (error) {
      if (error instanceof EngineClosedError) throw error;
      if (error instanceof AppError || isMissingObject(error)) {
        throw new EvaluationFailure(`model ${model.name} v${model.version} could not be loaded: ${isMissingObject(error) ? 'its file is missing from the object store' : describe(error)}`);
      }
      throw error;
    }
  }

  /**
   * The batch as model batches of fixed composition (consecutive chunks of at most
   * INFERENCE_MAX_BATCH_SIZE, each run alone): some models' outputs differ in the last bit
   * between batch sizes, and a resumed run regroups exactly like an uninterrupted one (runs
   * resume at a batch boundary), so its maps, and metrics, are bit-identical.
   */
  private async infer(loaded: LoadedModel, tensors: Float32Array[], signal: AbortSignal): Promise<InferenceResult[]> {
    const chunkSize = this.engine.options.maxBatchSize;
    const chunks: Float32Array[][] = [];
    for (let start = 0; start < tensors.length; start += chunkSize) chunks.push(tensors.slice(start, start + chunkSize));
    const results = await Promise.all(chunks.map((chunk) => this.engine.inferBatch(loaded.key, chunk, { signal, asOneBatch: true })));
    return results.flat();
  }

  private inferenceFailure(error: unknown, signal: AbortSignal): unknown {
    if (signal.aborted || error instanceof EngineClosedError) return error;
    if (error instanceof AppError) return new EvaluationFailure(`the model failed: ${error.message}`);
    return error;
  }

  private async prepareImage(image: ImageEntity, loaded: LoadedModel, signal: AbortSignal): Promise<PreparedImage> {
    if (signal.aborted) throw new JobInterruptedError();
    let bytes: Buffer;
    try {
      bytes = await this.objectStore.get(image.objectKey);
    } catch (error) {
      if (isMissingObject(error)) throw new EvaluationFailure(`image ${image.id} (${image.originalFilename}) is missing from the object store`);
      throw error;
    }
    const [height, width] = loaded.inputSize;
    try {
      const original = await decodeRgb(bytes, this.settings.imageMaxPixels);
      const resized = this.settings.resize === 'pil-bilinear' ? resizeRgbPilBilinear(original, width, height) : await resizeRgbSharpLinear(original, width, height);
      return { image, tensor: normalizeToChw(resized, loaded.metadata.mean, loaded.metadata.std) };
    } catch (error) {
      if (error instanceof ImageValidationError) throw new EvaluationFailure(`image ${image.id} (${image.originalFilename}) could not be decoded: ${error.message}`);
      throw error;
    }
  }

  /** Each map as an S3 object; its score is taken from the map as stored (decoded), like the metrics. */
  private async storeMaps(evaluationId: string, prepared: PreparedImage[], results: InferenceResult[], width: number, height: number): Promise<ImageResult[]> {
    return mapConcurrently(prepared, IO_CONCURRENCY, async ({ image }, index) => {
      const map = (results[index] as InferenceResult).anomalyMap;
      for (let i = 0; i < map.length; i++) {
        if (!Number.isFinite(map[i])) throw new EvaluationFailure(`the model produced a non-finite anomaly map value for image ${image.id} (${image.originalFilename})`);
      }
      const encoded = encodeMapObject(map, width, height);
      const [score] = imageScoresFromMaps([decodeMapObject(encoded).map]);
      const mapObjectKey = objectKeys.evaluationMap(evaluationId, image.id);
      await this.objectStore.put(mapObjectKey, encoded, MAP_OBJECT_CONTENT_TYPE);
      return { imageId: image.id, score: score as number, mapObjectKey };
    });
  }

  /** Upserts the batch's rows and recounts `processed`, in one transaction (rolled back if the evaluation is no longer RUNNING). */
  private async recordResults(evaluationId: string, results: ImageResult[]): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO evaluation_image_result (evaluation_id, image_id, score, score_rule, map_object_key)
         SELECT $1, result.image_id, result.score, $2, result.map_object_key
           FROM unnest($3::uuid[], $4::float8[], $5::text[]) AS result(image_id, score, map_object_key)
         ON CONFLICT (evaluation_id, image_id) DO UPDATE
           SET score = EXCLUDED.score, score_rule = EXCLUDED.score_rule, map_object_key = EXCLUDED.map_object_key`,
        [evaluationId, IMAGE_SCORE_RULE, results.map((result) => result.imageId), results.map((result) => result.score), results.map((result) => result.mapObjectKey)],
      );
      const updated = await queryRows<{ processed: number }>(
        manager,
        `UPDATE evaluation SET processed = (SELECT count(*) FROM evaluation_image_result WHERE evaluation_id = $1), updated_at = now()
          WHERE id = $1 AND status = 'RUNNING' RETURNING processed`,
        [evaluationId],
      );
      if (updated.length === 0) throw new EvaluationStopped();
    });
  }

  private async assertRunning(evaluationId: string): Promise<void> {
    const rows = await this.dataSource.query<Array<{ status: EvaluationStatus }>>('SELECT status FROM evaluation WHERE id = $1', [evaluationId]);
    const status = rows[0]?.status;
    if (status !== EvaluationStatus.RUNNING) throw new EvaluationStopped();
  }

  /**
   * Reads every stored map back, and every mask (resized to the map's size, see
   * evaluation-metrics.ts), then computes the metrics. Memory: the maps as float32 (4 bytes a
   * pixel) and masks (1 byte) of the whole TEST split, plus the metrics' ~2.2 bytes a pixel.
   */
  private async computeMetrics(evaluation: EvaluationEntity, images: ImageEntity[], width: number, height: number): Promise<EvaluationMetrics> {
    const rows = await this.dataSource.query<Array<{ image_id: string; map_object_key: string }>>(
      'SELECT image_id, map_object_key FROM evaluation_image_result WHERE evaluation_id = $1',
      [evaluation.id],
    );
    const mapKeys = new Map(rows.map((row) => [row.image_id, row.map_object_key]));
    const evaluated = await mapConcurrently(images, IO_CONCURRENCY, async (image): Promise<EvaluatedImage> => {
      const mapKey = mapKeys.get(image.id);
      if (!mapKey) throw new Error(`image ${image.id} has no result row after every batch was recorded`);
      const stored = decodeMapObject(await this.objectStore.get(mapKey));
      if (stored.width !== width || stored.height !== height) throw new EvaluationFailure(`the stored map of image ${image.id} is ${stored.width}×${stored.height}, not ${width}×${height}`);
      if (!image.maskObjectKey) return { defectType: image.defectType, label: 0, map: stored.map, mask: new Uint8Array(width * height) };
      const fullMask = await this.readMask(image);
      return { defectType: image.defectType, label: maskLabel(fullMask.pixels), map: stored.map, mask: resizeMaskNearest(fullMask.pixels, fullMask.width, fullMask.height, width, height) };
    });
    return computeMetricsInWorker(evaluated, width, height, { proLimit: evaluation.auproLimit, curvePoints: DEFAULT_CURVE_POINTS });
  }

  private async readMask(image: ImageEntity): Promise<{ pixels: Uint8Array; width: number; height: number }> {
    const key = image.maskObjectKey as string;
    try {
      const decoded = await decodeImageRgb(await this.objectStore.get(key), { maxPixels: this.settings.imageMaxPixels });
      const { width, height } = decoded.info;
      const pixels = new Uint8Array(width * height);
      // Masks are grayscale (validated at upload): the first channel says it all.
      for (let i = 0; i < pixels.length; i++) pixels[i] = decoded.pixels[i * 3] !== 0 ? 1 : 0;
      return { pixels, width, height };
    } catch (error) {
      if (isMissingObject(error)) throw new EvaluationFailure(`the mask of image ${image.id} (${image.originalFilename}) is missing from the object store`);
      if (error instanceof ImageValidationError) throw new EvaluationFailure(`the mask of image ${image.id} (${image.originalFilename}) could not be decoded: ${error.message}`);
      throw error;
    }
  }

  private async succeed(evaluationId: string, metrics: EvaluationMetrics, width: number, height: number): Promise<void> {
    const rows = await this.dataSource.query<Array<{ id: string }>>(
      `UPDATE evaluation SET status = 'SUCCEEDED', finished_at = now(), updated_at = now(), error = NULL,
              map_width = $2, map_height = $3, good_image_count = $4, defective_image_count = $5,
              image_auroc = $6, pixel_auroc = $7, aupro = $8, image_f1_max = $9, image_f1_threshold = $10,
              pixel_f1_max = $11, pixel_f1_threshold = $12, per_defect = $13, roc_curve = $14, pro_curve = $15
        WHERE id = $1 AND status = 'RUNNING' RETURNING id`,
      [
        evaluationId,
        width,
        height,
        metrics.goodImageCount,
        metrics.defectiveImageCount,
        metrics.imageAuroc,
        metrics.pixelAuroc,
        metrics.aupro,
        metrics.imageF1Max,
        metrics.imageF1Threshold,
        metrics.pixelF1Max,
        metrics.pixelF1Threshold,
        JSON.stringify(metrics.perDefect),
        JSON.stringify(metrics.rocCurve),
        JSON.stringify(metrics.proCurve),
      ],
    );
    if (rows.length === 0) throw new EvaluationStopped();
  }
}
