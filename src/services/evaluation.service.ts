import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal';
import { EvaluationStatus, FINAL_EVALUATION_STATUSES, type EvaluationEntity } from '../db/entities/evaluation.entity';
import { ModelStatus, type ModelVersionEntity } from '../db/entities/model-version.entity';
import type { Page, PageRequest } from '../db/pagination';
import type { Database } from '../db/repositories';
import type { EvaluationListFilter, ImageResultFilter } from '../db/repositories/evaluation.repository';
import { AppError, badInput, ErrorCode, notFound } from '../errors';
import type { JobQueue } from '../jobs/job-queue';
import { isAnomalousScore } from '../inference';
import { DEFAULT_PRO_LIMIT, IMAGE_SCORE_RULE } from '../metrics';
import { subscribeToLiveState } from '../pubsub/live-state';
import type { AppPubSub } from '../pubsub/pubsub';
import type { AfterCommit, GuardEvaluationQueue } from './accuracy-guard.service';
import type { CategoryService } from './category.service';
import { isUuid } from '../utils/ids';
import { EVALUATION_QUEUE, type EvaluationJobPayload } from './evaluation-runner';
import { modelNotReady, type ModelService } from './model.service';
import type { SnapshotService } from './snapshot.service';

export interface StartEvaluationRequest {
  modelId: string;
  categoryId: string;
  /** Omitted: a new snapshot of the category's live images is taken. */
  snapshotId?: string | null;
  auproLimit?: number | null;
}

export interface EvaluationImagesFilter {
  defectType?: string | null;
  good?: boolean | null;
  misclassified?: boolean | null;
}

/** One TEST image's result, with its verdict at the evaluation's image F1-max threshold. */
export interface EvaluationImageResult {
  evaluationId: string;
  imageId: string;
  score: number;
  /** null while the evaluation has no threshold. */
  isAnomalous: boolean | null;
}

export interface EvaluationFilter {
  modelId?: string | null;
  categoryId?: string | null;
}

/** Rolls back the insertion of a guard evaluation that has nothing to evaluate. */
class NothingToEvaluate extends Error {
  override readonly name = 'NothingToEvaluate';
}

/**
 * Evaluations of a model on the TEST split of a snapshot: started here (a QUEUED row and a job
 * in one transaction), run by EvaluationRunner in whichever process takes the job, followed
 * with `watch`. The evaluation row is the state of record. The INT8 accuracy guard of the
 * model registry queues its evaluations here too (`queueAccuracyGuard`).
 */
export class EvaluationService implements GuardEvaluationQueue {
  constructor(
    private readonly db: Database,
    private readonly jobQueue: JobQueue,
    private readonly models: ModelService,
    private readonly categories: CategoryService,
    private readonly snapshots: SnapshotService,
    private readonly pubSub: AppPubSub,
    private readonly logger: Logger,
  ) {}

  async start(request: StartEvaluationRequest, principal: Principal): Promise<EvaluationEntity> {
    const auproLimit = request.auproLimit ?? DEFAULT_PRO_LIMIT;
    if (!Number.isFinite(auproLimit) || auproLimit <= 0 || auproLimit > 1)
      throw badInput('auproLimit must be in (0, 1]', { argument: 'auproLimit' });
    const category = await this.categories.requireLive(request.categoryId);
    const model = await this.models.require(request.modelId);
    if (model.categoryId !== category.id)
      throw badInput(`model ${model.name} v${model.version} belongs to another category`, { argument: 'modelId' });
    if (model.status !== ModelStatus.READY) throw modelNotReady(model);

    const evaluationId = randomUUID();
    const given = request.snapshotId !== null && request.snapshotId !== undefined;
    let snapshotId: string;
    if (given) {
      const snapshot = await this.snapshots.findById((request.snapshotId as string).toLowerCase());
      if (!snapshot || snapshot.categoryId !== category.id)
        throw notFound('Snapshot of this category', request.snapshotId as string);
      snapshotId = snapshot.id;
    } else {
      snapshotId = (await this.snapshots.create(category.id, `evaluation ${evaluationId}`, principal)).id;
    }
    try {
      const evaluation = await this.insertQueued(evaluationId, model, snapshotId, auproLimit, principal);
      this.jobQueue.wake(EVALUATION_QUEUE);
      return evaluation;
    } catch (error) {
      // The snapshot taken for this evaluation is of no use without it.
      if (!given)
        await this.snapshots
          .delete(snapshotId)
          .catch((cleanupError: unknown) =>
            this.logger.warn(
              { err: cleanupError, snapshotId },
              'could not remove the snapshot of an evaluation that did not start',
            ),
          );
      throw error;
    }
  }

  /**
   * The accuracy guard's evaluation of a VALIDATING INT8 version: on the reference evaluation's
   * snapshot, with its AUPRO limit, requested by whoever registered the version; null when the
   * snapshot is gone or holds no TEST image any more.
   */
  async queueAccuracyGuard(model: ModelVersionEntity, reference: EvaluationEntity): Promise<EvaluationEntity | null> {
    if (!reference.snapshotId) return null;
    const snapshotId = reference.snapshotId;
    let evaluation: EvaluationEntity;
    try {
      evaluation = await this.db.transaction(async (tx) => {
        const created = await tx.evaluations.insertQueued({
          id: randomUUID(),
          modelId: model.id,
          snapshotId,
          auproLimit: reference.auproLimit,
          imageScoreRule: IMAGE_SCORE_RULE,
          requestedBy: model.createdBy,
          accuracyGuardOf: reference.id,
        });
        if (!created || created.total === 0) throw new NothingToEvaluate();
        const payload: EvaluationJobPayload = { evaluationId: created.id };
        await this.jobQueue.send(EVALUATION_QUEUE, payload, tx.manager);
        return tx.evaluations.get(created.id);
      });
    } catch (error) {
      if (error instanceof NothingToEvaluate) return null;
      throw error;
    }
    this.jobQueue.wake(EVALUATION_QUEUE);
    return evaluation;
  }

  private async insertQueued(
    evaluationId: string,
    model: ModelVersionEntity,
    snapshotId: string,
    auproLimit: number,
    principal: Principal,
  ): Promise<EvaluationEntity> {
    return this.db.transaction(async (tx) => {
      const created = await tx.evaluations.insertQueued({
        id: evaluationId,
        modelId: model.id,
        snapshotId,
        auproLimit,
        imageScoreRule: IMAGE_SCORE_RULE,
        requestedBy: principal.apiKeyId,
      });
      if (!created) throw notFound('Model or snapshot', `${model.id} / ${snapshotId}`);
      if (created.total === 0) {
        throw badInput('the snapshot holds no TEST images; there is nothing to evaluate', { argument: 'snapshotId' });
      }
      const payload: EvaluationJobPayload = { evaluationId };
      // The job is queued in the row's transaction: both or neither.
      await this.jobQueue.send(EVALUATION_QUEUE, payload, tx.manager);
      return tx.evaluations.get(evaluationId);
    });
  }

  async findById(id: string): Promise<EvaluationEntity | null> {
    return isUuid(id) ? this.db.evaluations.findById(id.toLowerCase()) : null;
  }

  async require(id: string): Promise<EvaluationEntity> {
    const evaluation = await this.findById(id);
    if (!evaluation) throw notFound('Evaluation', id);
    return evaluation;
  }

  /** Newest first, optionally of one model and/or one category. */
  list(filter: EvaluationFilter, page: PageRequest): Promise<Page<EvaluationEntity>> {
    const checked: EvaluationListFilter = {};
    if (filter.modelId !== null && filter.modelId !== undefined) {
      if (!isUuid(filter.modelId)) throw notFound('Model', filter.modelId);
      checked.modelId = filter.modelId.toLowerCase();
    }
    if (filter.categoryId !== null && filter.categoryId !== undefined) {
      if (!isUuid(filter.categoryId)) throw notFound('Category', filter.categoryId);
      checked.categoryId = filter.categoryId.toLowerCase();
    }
    return this.db.evaluations.page(checked, page);
  }

  /**
   * The evaluation's per-image results so far, by score. `misclassified` needs the image F1-max
   * threshold (EVALUATION_HAS_NO_THRESHOLD without it).
   */
  async images(
    evaluation: EvaluationEntity,
    filter: EvaluationImagesFilter,
    direction: 'ASC' | 'DESC',
    page: PageRequest,
  ): Promise<Page<EvaluationImageResult>> {
    const threshold = evaluation.imageF1Threshold;
    const checked: ImageResultFilter = {};
    if (filter.defectType !== null && filter.defectType !== undefined) checked.defectType = filter.defectType;
    if (filter.good !== null && filter.good !== undefined) checked.good = filter.good;
    if (filter.misclassified !== null && filter.misclassified !== undefined) {
      if (threshold === null)
        throw new AppError(
          ErrorCode.EVALUATION_HAS_NO_THRESHOLD,
          'the evaluation has no image F1-max threshold (yet), so no image is misclassified or not',
          { evaluationId: evaluation.id, status: evaluation.status },
        );
      checked.misclassified = { value: filter.misclassified, threshold };
    }
    const results = await this.db.evaluations.imageResultPage(evaluation.id, checked, direction, page);
    return {
      edges: results.edges.map(({ cursor, node }) => ({
        cursor,
        node: {
          evaluationId: evaluation.id,
          imageId: node.imageId,
          score: node.score,
          isAnomalous: threshold === null ? null : isAnomalousScore(node.score, threshold),
        },
      })),
      pageInfo: results.pageInfo,
      get totalCount() {
        return results.totalCount;
      },
    };
  }

  /**
   * QUEUED or RUNNING → CANCELLED. A runner notices within moments (it follows the
   * evaluation's events and checks between batches) and stops; the job is not retried. An
   * accuracy guard's evaluation takes its INT8 version to FAILED (ACCURACY_GUARD) with it.
   */
  async cancel(id: string): Promise<EvaluationEntity> {
    const evaluation = await this.require(id);
    const cancelled = await this.db.transaction(async (tx): Promise<{ announce: AfterCommit | null } | null> => {
      if (!(await tx.evaluations.cancel(evaluation.id))) return null;
      return { announce: await this.models.accuracyGuard.guardStopped(tx, evaluation.id) };
    });
    if (!cancelled) {
      const current = await this.require(id);
      throw new AppError(
        ErrorCode.EVALUATION_NOT_CANCELLABLE,
        `the evaluation is ${current.status}; only QUEUED or RUNNING evaluations can be cancelled`,
        {
          evaluationId: current.id,
          status: current.status,
        },
      );
    }
    this.pubSub.publish('EVALUATION_UPDATED', evaluation.id, { evaluationId: evaluation.id });
    cancelled.announce?.();
    return this.require(evaluation.id);
  }

  /** Sets the evaluated model's threshold to the image score where the evaluation reached its image F1-max. */
  async applyThreshold(evaluationId: string): Promise<ModelVersionEntity> {
    const evaluation = await this.require(evaluationId);
    if (evaluation.status !== EvaluationStatus.SUCCEEDED) {
      throw new AppError(
        ErrorCode.EVALUATION_NOT_FINISHED,
        `the evaluation is ${evaluation.status}; only a SUCCEEDED evaluation has a threshold`,
        {
          evaluationId: evaluation.id,
          status: evaluation.status,
        },
      );
    }
    if (evaluation.imageF1Threshold === null) {
      throw new AppError(
        ErrorCode.EVALUATION_HAS_NO_THRESHOLD,
        'the evaluation had no defective TEST image, so it has no F1-max threshold',
        { evaluationId: evaluation.id },
      );
    }
    return this.models.setThreshold(evaluation.modelId, evaluation.imageF1Threshold);
  }

  /** The evaluation's current state at once, then each change (about once a second while it runs), until it has finished. */
  async watch(id: string): Promise<AsyncIterableIterator<EvaluationEntity>> {
    const key = id.toLowerCase();
    const updates = await subscribeToLiveState({
      changes: this.pubSub.subscribe('EVALUATION_UPDATED', key),
      connection: this.pubSub.connection,
      load: () => this.findById(key),
      isFinal: (evaluation) => FINAL_EVALUATION_STATUSES.has(evaluation.status),
      isSame: (previous, next) =>
        previous.updatedAt.getTime() === next.updatedAt.getTime() &&
        previous.status === next.status &&
        previous.processed === next.processed,
    });
    if (!updates) throw notFound('Evaluation', id);
    return updates;
  }
}
