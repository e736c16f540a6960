import { setMaxListeners } from 'node:events';
import { S3ServiceException } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { EvaluationStatus, type EvaluationEntity } from '../db/entities/evaluation.entity';
import { ImageSplit, type ImageEntity } from '../db/entities/image.entity';
import { ModelStatus, type ModelVersionEntity } from '../db/entities/model-version.entity';
import type { Database } from '../db/repositories';
import type { ImageResult } from '../db/repositories/evaluation.repository';
import { AppError } from '../errors';
import { decodeMapObject, encodeMapObject, MAP_OBJECT_CONTENT_TYPE } from '../formats/anomaly-map-object';
import { decodeImageRgb, ImageValidationError } from '../images/image-bytes';
import { EngineClosedError, type InferenceResult, type LoadedModel } from '../inference';
import { JobInterruptedError, type JobQueue, type QueueDefinition } from '../jobs/job-queue';
import {
  TrackedJobs,
  type FailureCause,
  type RequeueCause,
  type TrackedRun,
  type WorkErrorMeaning,
} from '../jobs/tracked-job';
import { IMAGE_SCORE_RULE, imageScoresFromMaps } from '../metrics';
import { DEFAULT_CURVE_POINTS, maskLabel, resizeMaskNearest } from '../metrics/evaluation-metrics';
import type { EvaluatedImage, EvaluationMetrics } from '../metrics/evaluation-metrics';
import { computeMetricsInWorker } from '../metrics/evaluation-metrics-thread';
import type { AppPubSub } from '../pubsub/pubsub';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { mapConcurrently } from '../utils/concurrency';
import type { AccuracyGuardSettlement, AfterCommit } from './accuracy-guard.service';
import { ImageInputError, type ModelRunner } from './model-runner.service';
import type { SnapshotService } from './snapshot.service';

export const EVALUATION_QUEUE = 'model-evaluation';

export interface EvaluationJobPayload {
  evaluationId: string;
}

export interface EvaluationRunnerSettings {
  batchSize: number;
  jobExpireSeconds: number;
  /** Decompression-bomb guard of the mask decoder. */
  imageMaxPixels: number;
}

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
  private timer: NodeJS.Timeout | null = null;

  /** `lastPublished`: when the state was last published (e.g. just now, as the run started). */
  constructor(
    private readonly publish: () => void,
    private lastPublished = 0,
  ) {}

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

/** What one run of an evaluation works with. */
interface EvaluationRun {
  evaluationId: string;
  /** Aborted when the row says CANCELLED (or is gone). */
  cancelled: AbortController;
  watcher: { stop(): Promise<void> };
  progress: ProgressPublisher;
}

/**
 * Runs evaluation jobs: every TEST image of the snapshot through the model in batches, each
 * image's map stored in S3 and its score in evaluation_image_result (an upsert by
 * (evaluation, image), so a run resumed after a crash redoes at most the batch in flight and
 * counts nothing twice), then the metrics from the stored maps. The job's lifecycle (one runner
 * per evaluation at a time, across processes, recovery, hand-back on stop) is TrackedJobs'.
 * An INT8 version's accuracy guard evaluation runs on its VALIDATING model; its end (SUCCEEDED
 * or FAILED) is reported to the model domain (`guard`) in the transaction that records it.
 */
export class EvaluationRunner {
  private readonly jobs: TrackedJobs<EvaluationJobPayload, EvaluationRun, string>;

  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    jobQueue: JobQueue,
    private readonly pubSub: AppPubSub,
    private readonly runner: ModelRunner,
    private readonly snapshots: SnapshotService,
    private readonly guard: AccuracyGuardSettlement,
    private readonly settings: EvaluationRunnerSettings,
    private readonly logger: Logger,
  ) {
    this.jobs = new TrackedJobs(db, jobQueue, logger, {
      queue: {
        name: EVALUATION_QUEUE,
        concurrency: 1,
        retryLimit: 2,
        retryDelaySeconds: 10,
        // A backstop only: a dead runner is found within EVALUATION_RECOVERY_INTERVAL_SECONDS by recoverAbandoned.
        expireInSeconds: settings.jobExpireSeconds,
      },
      label: 'evaluation',
      idField: 'evaluationId',
      lockKey: (id) => `evaluation:${id}`,
      payload: (id) => ({ evaluationId: id }),
      idOf: (payload) => payload.evaluationId,
      publish: (id) => this.publish(id),
      listRunning: () => db.evaluations.listRunningIds(),
      requeueIfRunning: (tx, id) => tx.evaluations.requeueIfRunning(id),
      begin: (run) => this.begin(run.id),
      work: (state, run) => this.work(state, run),
      classify: (error, state, run) => this.classify(error, state, run),
      requeue: (state, why) => this.requeue(state, why),
      fail: (state, why) => this.fail(state, why),
      end: async ({ progress, watcher }) => {
        progress.close();
        await watcher.stop();
      },
    });
  }

  queueDefinition(): QueueDefinition<EvaluationJobPayload> {
    return this.jobs.queueDefinition();
  }

  publish(evaluationId: string): void {
    this.pubSub.publish('EVALUATION_UPDATED', evaluationId, { evaluationId });
  }

  /**
   * Queues again the evaluations marked RUNNING whose runner is gone (its process died, so
   * PostgreSQL dropped its lock). Run when workers start and periodically.
   */
  recoverAbandoned(): Promise<number> {
    return this.jobs.recoverAbandoned();
  }

  /** Aborts this process's runs and waits until each has handed its evaluation back (QUEUED). */
  stop(): Promise<void> {
    return this.jobs.stop();
  }

  /** Watches for a cancel, then marks the row RUNNING; null (the watcher stopped) if it is cancelled, finished or gone. */
  private async begin(evaluationId: string): Promise<EvaluationRun | null> {
    const cancelled = new AbortController();
    const watcher = this.watchForCancellation(evaluationId, cancelled);
    try {
      if (!(await this.db.evaluations.markRunning(evaluationId))) {
        await watcher.stop();
        return null;
      }
    } catch (error) {
      await watcher.stop();
      throw error;
    }
    // TrackedJobs publishes the RUNNING row as soon as this returns: progress events count from now.
    return {
      evaluationId,
      cancelled,
      watcher,
      progress: new ProgressPublisher(() => this.publish(evaluationId), Date.now()),
    };
  }

  private async work({ evaluationId, cancelled, progress }: EvaluationRun, run: TrackedRun): Promise<void> {
    const evaluation = await this.db.evaluations.findById(evaluationId);
    if (!evaluation) throw new EvaluationStopped();
    const signal = AbortSignal.any([run.signal, cancelled.signal]);
    // Every image of a batch in flight listens to it.
    setMaxListeners(0, signal);
    await this.evaluate(evaluation, signal, progress);
  }

  /** What an evaluation that stopped early becomes. */
  private classify(error: unknown, { cancelled }: EvaluationRun, run: TrackedRun): WorkErrorMeaning<string> | null {
    if (error instanceof EvaluationStopped || cancelled.signal.aborted) return { kind: 'stopped' };
    if (run.signal.aborted || error instanceof EngineClosedError || error instanceof JobInterruptedError)
      return { kind: 'interrupted' };
    if (error instanceof EvaluationFailure) return { kind: 'failed', reason: error.message };
    return null;
  }

  private async requeue({ evaluationId }: EvaluationRun, why: RequeueCause): Promise<void> {
    if (why.cause === 'error') this.logger.error({ err: why.error, evaluationId }, 'evaluation failed unexpectedly');
    await this.db.evaluations.requeueIfRunning(evaluationId);
  }

  private async fail({ evaluationId }: EvaluationRun, why: FailureCause<string>): Promise<void> {
    if (why.cause === 'error') this.logger.error({ err: why.error, evaluationId }, 'evaluation failed unexpectedly');
    const message = why.cause === 'failed' ? why.reason : `the evaluation failed: ${describe(why.error)}`;
    this.logger.warn({ evaluationId, reason: message }, 'evaluation failed');
    const announce = await this.db.transaction(async (tx) =>
      (await tx.evaluations.failIfRunning(evaluationId, message)) ? this.guard.guardStopped(tx, evaluationId) : null,
    );
    announce?.();
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
        // undefined: the status could not be read this time; null: the row is gone.
        const status = await this.db.evaluations.statusOf(evaluationId).catch(() => undefined);
        if (status === null || status === EvaluationStatus.CANCELLED) {
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

  private async evaluate(
    evaluation: EvaluationEntity,
    signal: AbortSignal,
    progress: ProgressPublisher,
  ): Promise<void> {
    if (!evaluation.snapshotId) throw new EvaluationFailure('its snapshot was deleted');
    const model = await this.db.models.findById(evaluation.modelId);
    if (!model) throw new EvaluationStopped();
    // An accuracy guard evaluates the INT8 version it decides on, while that is VALIDATING.
    const evaluable = evaluation.accuracyGuardOf ? ModelStatus.VALIDATING : ModelStatus.READY;
    if (model.status !== evaluable)
      throw new EvaluationFailure(
        evaluation.accuracyGuardOf
          ? `model ${model.name} v${model.version} is ${model.status}; an accuracy guard evaluates VALIDATING versions only`
          : `model ${model.name} v${model.version} is ${model.status}; only READY models can be evaluated`,
      );
    const images = (await this.snapshots.listSnapshotImages(evaluation.snapshotId)).filter(
      (image) => image.split === ImageSplit.TEST,
    );
    if (images.length !== evaluation.total)
      throw new EvaluationFailure(
        `the snapshot lists ${images.length} TEST images, ${evaluation.total} when the evaluation started`,
      );

    const loaded = await this.loadModel(model);
    const [height, width] = loaded.inputSize;
    const done = new Set(await this.db.evaluations.listResultImageIds(evaluation.id));
    const pending = images.filter((image) => !done.has(image.id));
    const batches: ImageEntity[][] = [];
    for (let start = 0; start < pending.length; start += this.settings.batchSize)
      batches.push(pending.slice(start, start + this.settings.batchSize));

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
      const results = await this.infer(
        model,
        loaded,
        prepared.map((item) => item.tensor),
        signal,
      );
      const written = await this.storeMaps(evaluation.id, prepared, results, width, height);
      await this.recordResults(evaluation.id, written);
      progress.changed();
    }

    if (signal.aborted) throw new JobInterruptedError();
    await this.assertRunning(evaluation.id);
    const metrics = await this.computeMetrics(evaluation, images, width, height);
    // A guard's version is READY or FAILED in the same transaction: both or neither.
    const succeeded = await this.db.transaction(async (tx): Promise<{ announce: AfterCommit | null } | null> => {
      if (!(await tx.evaluations.succeedIfRunning(evaluation.id, metrics, width, height))) return null;
      return {
        announce: evaluation.accuracyGuardOf
          ? await this.guard.guardSucceeded(tx, evaluation.id, loaded.metadata)
          : null,
      };
    });
    if (!succeeded) throw new EvaluationStopped();
    progress.now();
    succeeded.announce?.();
  }

  private async loadModel(model: ModelVersionEntity): Promise<LoadedModel> {
    try {
      return await this.runner.load(model);
    } catch (error) {
      if (error instanceof EngineClosedError) throw error;
      if (error instanceof AppError || isMissingObject(error)) {
        throw new EvaluationFailure(
          `model ${model.name} v${model.version} could not be loaded: ${isMissingObject(error) ? 'its file is missing from the object store' : describe(error)}`,
        );
      }
      throw error;
    }
  }

  /**
   * The batch as model batches of fixed composition (asOneBatch, see ModelRunner.inferBatch): a
   * resumed run regroups exactly like an uninterrupted one (runs resume at a batch boundary), so
   * its maps, and metrics, are bit-identical.
   */
  private async infer(
    model: ModelVersionEntity,
    loaded: LoadedModel,
    tensors: Float32Array[],
    signal: AbortSignal,
  ): Promise<InferenceResult[]> {
    try {
      return await this.runner.inferBatch(model, loaded, tensors, { signal, asOneBatch: true });
    } catch (error) {
      if (signal.aborted || error instanceof EngineClosedError) throw error;
      if (error instanceof AppError) throw new EvaluationFailure(`the model failed: ${error.message}`);
      throw error;
    }
  }

  private async prepareImage(image: ImageEntity, loaded: LoadedModel, signal: AbortSignal): Promise<PreparedImage> {
    if (signal.aborted) throw new JobInterruptedError();
    let bytes: Buffer;
    try {
      bytes = await this.objectStore.get(image.objectKey);
    } catch (error) {
      if (isMissingObject(error))
        throw new EvaluationFailure(`image ${image.id} (${image.originalFilename}) is missing from the object store`);
      throw error;
    }
    try {
      return { image, tensor: (await this.runner.preprocess(bytes, loaded)).tensor };
    } catch (error) {
      if (!(error instanceof ImageInputError)) throw error;
      throw new EvaluationFailure(
        `image ${image.id} (${image.originalFilename}) could not be decoded: ${error.message}`,
      );
    }
  }

  /** Each map as an S3 object; its score is taken from the map as stored (decoded), like the metrics. */
  private async storeMaps(
    evaluationId: string,
    prepared: PreparedImage[],
    results: InferenceResult[],
    width: number,
    height: number,
  ): Promise<ImageResult[]> {
    return mapConcurrently(prepared, IO_CONCURRENCY, async ({ image }, index) => {
      const map = (results[index] as InferenceResult).anomalyMap;
      for (let i = 0; i < map.length; i++) {
        if (!Number.isFinite(map[i]))
          throw new EvaluationFailure(
            `the model produced a non-finite anomaly map value for image ${image.id} (${image.originalFilename})`,
          );
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
    await this.db.transaction(async (tx) => {
      await tx.evaluations.upsertImageResults(evaluationId, IMAGE_SCORE_RULE, results);
      if (!(await tx.evaluations.recountProcessedIfRunning(evaluationId))) throw new EvaluationStopped();
    });
  }

  private async assertRunning(evaluationId: string): Promise<void> {
    const status = await this.db.evaluations.statusOf(evaluationId);
    if (status !== EvaluationStatus.RUNNING) throw new EvaluationStopped();
  }

  /**
   * Reads every stored map back, and every mask (resized to the map's size, see
   * evaluation-metrics.ts), then computes the metrics. Memory: the maps as float32 (4 bytes a
   * pixel) and masks (1 byte) of the whole TEST split, plus the metrics' ~2.2 bytes a pixel.
   */
  private async computeMetrics(
    evaluation: EvaluationEntity,
    images: ImageEntity[],
    width: number,
    height: number,
  ): Promise<EvaluationMetrics> {
    const mapKeys = await this.db.evaluations.mapKeysByImage(evaluation.id);
    const evaluated = await mapConcurrently(images, IO_CONCURRENCY, async (image): Promise<EvaluatedImage> => {
      const mapKey = mapKeys.get(image.id);
      if (!mapKey) throw new Error(`image ${image.id} has no result row after every batch was recorded`);
      const stored = decodeMapObject(await this.objectStore.get(mapKey));
      if (stored.width !== width || stored.height !== height)
        throw new EvaluationFailure(
          `the stored map of image ${image.id} is ${stored.width}×${stored.height}, not ${width}×${height}`,
        );
      if (!image.maskObjectKey)
        return { defectType: image.defectType, label: 0, map: stored.map, mask: new Uint8Array(width * height) };
      const fullMask = await this.readMask(image);
      return {
        defectType: image.defectType,
        label: maskLabel(fullMask.pixels),
        map: stored.map,
        mask: resizeMaskNearest(fullMask.pixels, fullMask.width, fullMask.height, width, height),
      };
    });
    return computeMetricsInWorker(evaluated, width, height, {
      proLimit: evaluation.auproLimit,
      curvePoints: DEFAULT_CURVE_POINTS,
    });
  }

  private async readMask(image: ImageEntity): Promise<{ pixels: Uint8Array; width: number; height: number }> {
    const key = image.maskObjectKey as string;
    try {
      const decoded = await decodeImageRgb(await this.objectStore.get(key), {
        maxPixels: this.settings.imageMaxPixels,
      });
      const { width, height } = decoded.info;
      const pixels = new Uint8Array(width * height);
      // Masks are grayscale (validated at upload): the first channel says it all.
      for (let i = 0; i < pixels.length; i++) pixels[i] = decoded.pixels[i * 3] !== 0 ? 1 : 0;
      return { pixels, width, height };
    } catch (error) {
      if (isMissingObject(error))
        throw new EvaluationFailure(
          `the mask of image ${image.id} (${image.originalFilename}) is missing from the object store`,
        );
      if (error instanceof ImageValidationError)
        throw new EvaluationFailure(
          `the mask of image ${image.id} (${image.originalFilename}) could not be decoded: ${error.message}`,
        );
      throw error;
    }
  }
}
