import type { Logger } from 'pino';
import { EvaluationStatus, type EvaluationEntity } from '../db/entities/evaluation.entity';
import { ModelStatus, type ModelVersionEntity } from '../db/entities/model-version.entity';
import type { Database, Repositories } from '../db/repositories';
import type { ValidationOutcome } from '../db/repositories/model.repository';
import { ErrorCode } from '../errors';
import type { ModelMetadata } from '../inference';
import { compareAccuracy, describeDrop, type GuardMetrics } from '../metrics/accuracy-guard';

/** The metadata_props key that marks an INT8 file (docs/model-contract.md); its value names the scheme. */
export const QUANTIZATION_KEY = 'quantization';

/** Whether the file's metadata_props make it an INT8 file. */
export function isQuantized(props: Readonly<Record<string, string>>): boolean {
  return Object.prototype.hasOwnProperty.call(props, QUANTIZATION_KEY);
}

/** Something to do once the transaction that made a change has committed (publish its event). */
export type AfterCommit = () => void;

/**
 * How the guard queues its evaluation: `EvaluationService.queueAccuracyGuard`, connected by the
 * evaluation domain's wiring (the evaluation service is built after the model service).
 */
export interface GuardEvaluationQueue {
  /**
   * A QUEUED evaluation of the VALIDATING version on the reference's snapshot with its AUPRO
   * limit, marked as the guard of `reference`; null when the snapshot no longer allows it.
   */
  queueAccuracyGuard(model: ModelVersionEntity, reference: EvaluationEntity): Promise<EvaluationEntity | null>;
}

/**
 * What the evaluation runner and `cancelEvaluation` tell the model domain when an evaluation
 * ends, inside the transaction that ends it, so that the evaluation's end and its version's
 * outcome commit together (whichever process runs the job) and the version's event is
 * published once, after the commit. Nothing happens for evaluations that are no guard.
 */
export interface AccuracyGuardSettlement {
  /** The evaluation is now SUCCEEDED (in `tx`); `metadata` is the evaluated file's, as loaded. */
  guardSucceeded(tx: Repositories, evaluationId: string, metadata: ModelMetadata): Promise<AfterCommit | null>;
  /** The evaluation is now FAILED or CANCELLED (in `tx`). */
  guardStopped(tx: Repositories, evaluationId: string): Promise<AfterCommit | null>;
}

/** What the guard needs of ModelService, which owns it. */
export interface AccuracyGuardHost {
  /** What validation records for a READY version of this file. */
  readyOutcome(model: ModelVersionEntity, metadata: ModelMetadata): Promise<ValidationOutcome>;
  publishOutcome(model: ModelVersionEntity, kind: 'READY' | 'FAILED'): void;
}

function metricsOf(evaluation: EvaluationEntity): GuardMetrics {
  return { imageAuroc: evaluation.imageAuroc, pixelAuroc: evaluation.pixelAuroc, aupro: evaluation.aupro };
}

/**
 * The accuracy guard of INT8 versions (docs/model-contract.md, GitHub issue 13): an INT8 file
 * registered in a category where an fp32 version has a SUCCEEDED evaluation stays VALIDATING
 * while the same evaluation (snapshot, AUPRO limit) runs on it; it becomes READY only when image
 * AUROC, pixel AUROC and AUPRO each dropped by at most MODEL_ACCURACY_TOLERANCE_POINTS, else
 * FAILED with failureCode ACCURACY_GUARD and the metrics in the reason. Without such an
 * evaluation an INT8 file becomes READY like any contract model. Owned by ModelService.
 */
export class AccuracyGuard implements AccuracyGuardSettlement {
  private queue: GuardEvaluationQueue | null = null;

  constructor(
    private readonly db: Database,
    private readonly tolerancePoints: number,
    private readonly host: AccuracyGuardHost,
    private readonly logger: Logger,
  ) {}

  /** The evaluation domain's wiring connects the evaluations' queue. */
  connect(queue: GuardEvaluationQueue): void {
    this.queue = queue;
  }

  /**
   * Queues the guard evaluation of a VALIDATING INT8 version that passed the contract checks;
   * null when its category has no reference (the version becomes READY like any other).
   */
  async start(model: ModelVersionEntity): Promise<EvaluationEntity | null> {
    const reference = await this.db.evaluations.findAccuracyReference(model.categoryId);
    if (!reference) return null;
    if (!this.queue) throw new Error('the accuracy guard has no evaluation queue (EvaluationDomain connects it)');
    const guard = await this.queue.queueAccuracyGuard(model, reference);
    if (guard)
      this.logger.info(
        { modelId: model.id, evaluationId: guard.id, referenceEvaluationId: reference.id },
        'INT8 model: accuracy guard evaluation queued',
      );
    return guard;
  }

  async guardSucceeded(tx: Repositories, evaluationId: string, metadata: ModelMetadata): Promise<AfterCommit | null> {
    const guarded = await this.guardedVersion(tx, evaluationId);
    if (!guarded) return null;
    const { evaluation, model } = guarded;
    const referenceId = evaluation.accuracyGuardOf as string;
    const reference = await tx.evaluations.findById(referenceId);
    if (!reference || reference.status !== EvaluationStatus.SUCCEEDED)
      return this.fail(
        tx,
        model,
        `the reference evaluation ${referenceId} was deleted before the accuracy guard's evaluation ${evaluation.id} finished; register the file again`,
      );
    // Kept when it fails too: its input size and map statistics draw its guard evaluation's heatmaps.
    const described = await this.host.readyOutcome(model, metadata);
    const comparison = compareAccuracy(metricsOf(reference), metricsOf(evaluation), this.tolerancePoints);
    if (!comparison.passed) {
      const drops = comparison.failures.map(describeDrop).join(', ');
      return this.fail(
        tx,
        model,
        `${drops} against evaluation ${reference.id} of ${await this.describeModel(tx, reference.modelId)}; tolerance ${this.tolerancePoints} points`,
        described,
      );
    }
    if (!(await tx.models.finishValidation(model.id, described))) return null;
    const ready = await tx.models.get(model.id);
    this.logger.info(
      { modelId: model.id, evaluationId: evaluation.id, referenceEvaluationId: reference.id },
      'INT8 model: within the accuracy tolerance, READY',
    );
    return () => this.host.publishOutcome(ready, 'READY');
  }

  async guardStopped(tx: Repositories, evaluationId: string): Promise<AfterCommit | null> {
    const guarded = await this.guardedVersion(tx, evaluationId);
    if (!guarded) return null;
    const { evaluation, model } = guarded;
    const how =
      evaluation.status === EvaluationStatus.CANCELLED
        ? 'was cancelled'
        : `FAILED${evaluation.error ? ` (${evaluation.error})` : ''}`;
    return this.fail(
      tx,
      model,
      `the accuracy guard's evaluation ${evaluation.id} ${how}, so the accuracy against evaluation ${evaluation.accuracyGuardOf} was not measured; register the file again`,
    );
  }

  /** The guard evaluation and its version, if the evaluation is a guard and its version still VALIDATING. */
  private async guardedVersion(
    tx: Repositories,
    evaluationId: string,
  ): Promise<{ evaluation: EvaluationEntity; model: ModelVersionEntity } | null> {
    const evaluation = await tx.evaluations.findById(evaluationId);
    if (!evaluation?.accuracyGuardOf) return null;
    const model = await tx.models.findById(evaluation.modelId);
    if (!model || model.status !== ModelStatus.VALIDATING) return null;
    return { evaluation, model };
  }

  private async fail(
    tx: Repositories,
    model: ModelVersionEntity,
    reason: string,
    described?: ValidationOutcome,
  ): Promise<AfterCommit | null> {
    const changed = await tx.models.finishValidation(model.id, {
      ...described,
      status: ModelStatus.FAILED,
      failureCode: ErrorCode.ACCURACY_GUARD,
      failureReason: reason,
      validatedAt: new Date(),
    });
    if (!changed) return null;
    const failed = await tx.models.get(model.id);
    this.logger.warn({ modelId: model.id, reason }, 'INT8 model: refused by the accuracy guard');
    return () => this.host.publishOutcome(failed, 'FAILED');
  }

  private async describeModel(tx: Repositories, modelId: string): Promise<string> {
    const model = await tx.models.findById(modelId);
    return model ? `${model.name} v${model.version}` : `model ${modelId}`;
  }
}
