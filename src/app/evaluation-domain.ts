import type { Logger } from 'pino';
import type { DomainDependencies } from './domain-dependencies';
import type { ResolverBinding } from '../graphql/schema';
import type { JobQueue } from '../jobs/job-queue';
import { createEvaluationResolver, EvaluationImageResolver } from '../resolvers/evaluation.resolver';
import type { DatasetDomain } from './dataset-domain';
import { EvaluationRunner } from '../services/evaluation-runner';
import { EvaluationService } from '../services/evaluation.service';
import type { InspectionDomain } from './inspection-domain';

export interface EvaluationDomainDependencies extends DomainDependencies {
  jobQueue: JobQueue;
  /** The dataset services evaluations use. */
  datasets: Pick<DatasetDomain, 'categories' | 'snapshots'>;
  /** Its model runner (inference engine and model loader) runs the evaluations of this process. */
  inspection: InspectionDomain;
  logger: Logger;
}

/**
 * Model evaluations, wired once per process (server or worker). Stop it before the inference
 * engine closes: running evaluations are handed back to the queue first.
 */
export class EvaluationDomain {
  readonly runner: EvaluationRunner;
  readonly evaluations: EvaluationService;
  private recoveryTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly deps: EvaluationDomainDependencies) {
    const { config, db, objectStore, pubSub, jobQueue, datasets, inspection } = deps;
    const logger = deps.logger.child({ component: 'evaluations' });
    this.runner = new EvaluationRunner(
      db,
      objectStore,
      jobQueue,
      pubSub,
      inspection.runner,
      datasets.snapshots,
      // The guard evaluations of INT8 versions end in the model registry's accuracy guard.
      inspection.models.accuracyGuard,
      {
        batchSize: config.evaluations.batchSize,
        jobExpireSeconds: config.evaluations.jobExpireSeconds,
        imageMaxPixels: config.datasets.imageMaxPixels,
      },
      logger,
    );
    this.evaluations = new EvaluationService(
      db,
      jobQueue,
      inspection.models,
      datasets.categories,
      datasets.snapshots,
      pubSub,
      logger,
    );
    // The accuracy guard (model registry, built first) queues its evaluations here.
    inspection.models.accuracyGuard.connect(this.evaluations);
  }

  static async create(deps: EvaluationDomainDependencies): Promise<EvaluationDomain> {
    const domain = new EvaluationDomain(deps);
    await deps.jobQueue.define(domain.runner.queueDefinition());
    return domain;
  }

  resolverBindings(): ResolverBinding[] {
    const EvaluationResolver = createEvaluationResolver(this.evaluations);
    const { inspection } = this.deps;
    return [
      [EvaluationResolver, new EvaluationResolver()],
      // The evaluated images' PNGs are drawn and served by the inspections' signed-URL machinery.
      [EvaluationImageResolver, new EvaluationImageResolver(() => inspection.inspectionImages)],
    ];
  }

  /** What a process running job workers also does: queue again evaluations whose worker died. */
  async startBackgroundWork(): Promise<void> {
    const recover = (): Promise<void> =>
      this.runner.recoverAbandoned().then(
        () => undefined,
        (error: unknown) => this.deps.logger.warn({ err: error }, 'could not check for abandoned evaluations'),
      );
    await recover();
    this.recoveryTimer = setInterval(() => void recover(), this.deps.config.evaluations.recoveryIntervalSeconds * 1000);
    this.recoveryTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.recoveryTimer) clearInterval(this.recoveryTimer);
    this.recoveryTimer = null;
    await this.runner.stop();
  }
}
