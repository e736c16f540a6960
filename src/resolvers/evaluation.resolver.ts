import { JOB_COST } from '../graphql/operation-costs';
import {
  Arg,
  Args,
  Authorized,
  Ctx,
  FieldResolver,
  ID,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { Role } from '../auth/principal';
import { CategoryEntity } from '../db/entities/category.entity';
import { EvaluationEntity } from '../db/entities/evaluation.entity';
import { ModelVersionEntity } from '../db/entities/model-version.entity';
import { ImageEntity } from '../db/entities/image.entity';
import { SnapshotEntity } from '../db/entities/snapshot.entity';
import type { Page } from '../db/pagination';
import { notFound } from '../errors';
import type { RequestContext } from '../graphql/context';
import { Category } from '../schema/dataset.types';
import {
  CurvePoint,
  DefectMetrics,
  Evaluation,
  EvaluationConnection,
  EvaluationImage,
  EvaluationImageConnection,
  EvaluationImageOrder,
  EvaluationImagesArgs,
  EvaluationsArgs,
  StartEvaluationInput,
} from '../schema/evaluation.types';
import { Image, Snapshot } from '../schema/image.types';
import { ModelVersion } from '../schema/model.types';
import type { EvaluationImageResult, EvaluationService } from '../services/evaluation.service';
import type { InspectionImages } from '../services/inspection-images.service';
import { callerOf } from './principal';

/**
 * Built around the service because a subscription's `subscribe` function is declared in the
 * decorator, outside any resolver instance.
 */
export function createEvaluationResolver(evaluations: EvaluationService) {
  @Resolver(() => Evaluation)
  class EvaluationResolver {
    @Authorized(Role.LABELER)
    @Mutation(() => Evaluation, {
      complexity: ({ childComplexity }) => JOB_COST + childComplexity,
      description:
        'Queues an evaluation of a READY model on the TEST images of a snapshot; follow it with evaluationProgress',
    })
    startEvaluation(
      @Arg('input') input: StartEvaluationInput,
      @Ctx() context: RequestContext,
    ): Promise<EvaluationEntity> {
      return evaluations.start(input, callerOf(context));
    }

    @Authorized(Role.LABELER)
    @Mutation(() => Evaluation, {
      description: 'Stops a QUEUED or RUNNING evaluation (EVALUATION_NOT_CANCELLABLE otherwise)',
    })
    cancelEvaluation(@Arg('id', () => ID) id: string): Promise<EvaluationEntity> {
      return evaluations.cancel(id);
    }

    @Authorized(Role.ADMIN)
    @Mutation(() => ModelVersion, {
      description:
        'Sets the evaluated model’s threshold to the evaluation’s imageF1Threshold (EVALUATION_NOT_FINISHED unless SUCCEEDED)',
    })
    applyEvaluationThreshold(@Arg('evaluationId', () => ID) evaluationId: string): Promise<ModelVersionEntity> {
      return evaluations.applyThreshold(evaluationId);
    }

    @Authorized(Role.VIEWER)
    @Query(() => Evaluation, { nullable: true })
    evaluation(@Arg('id', () => ID) id: string): Promise<EvaluationEntity | null> {
      return evaluations.findById(id);
    }

    @Authorized(Role.VIEWER)
    @Query(() => EvaluationConnection, {
      description: 'Evaluations, newest first, optionally of one model and/or one category',
    })
    evaluations(@Args() args: EvaluationsArgs): Promise<Page<EvaluationEntity>> {
      return evaluations.list({ modelId: args.modelId, categoryId: args.categoryId }, args);
    }

    @Authorized(Role.VIEWER)
    @Subscription(() => Evaluation, {
      description:
        'The evaluation’s current state at once, then status and progress about once a second while it runs, from any process, until it has finished',
      subscribe: ({ args }) => evaluations.watch(String(args.id)),
    })
    evaluationProgress(@Root() evaluation: EvaluationEntity, @Arg('id', () => ID) _id: string): EvaluationEntity {
      return evaluation;
    }

    @FieldResolver(() => ModelVersion)
    async model(@Root() evaluation: EvaluationEntity, @Ctx() context: RequestContext): Promise<ModelVersionEntity> {
      const model = await context.loaders.byId(ModelVersionEntity).load(evaluation.modelId);
      if (!model) throw notFound('Model', evaluation.modelId);
      return model;
    }

    @FieldResolver(() => Category)
    async category(@Root() evaluation: EvaluationEntity, @Ctx() context: RequestContext): Promise<CategoryEntity> {
      const category = await context.loaders.byId(CategoryEntity).load(evaluation.categoryId);
      if (!category) throw notFound('Category', evaluation.categoryId);
      return category;
    }

    @FieldResolver(() => Snapshot, { nullable: true, description: 'null once the snapshot was deleted' })
    snapshot(@Root() evaluation: EvaluationEntity, @Ctx() context: RequestContext): Promise<SnapshotEntity | null> {
      return evaluation.snapshotId
        ? context.loaders.byId(SnapshotEntity).load(evaluation.snapshotId)
        : Promise.resolve(null);
    }

    @FieldResolver(() => Evaluation, {
      nullable: true,
      description:
        'An accuracy guard’s reference: the fp32 version’s evaluation whose image AUROC, pixel AUROC and AUPRO this one must ' +
        'match within MODEL_ACCURACY_TOLERANCE_POINTS; null for other evaluations, or once the reference was deleted',
    })
    accuracyGuardReference(
      @Root() evaluation: EvaluationEntity,
      @Ctx() context: RequestContext,
    ): Promise<EvaluationEntity | null> {
      return evaluation.accuracyGuardOf
        ? context.loaders.byId(EvaluationEntity).load(evaluation.accuracyGuardOf)
        : Promise.resolve(null);
    }

    @FieldResolver(() => [DefectMetrics])
    perDefect(@Root() evaluation: EvaluationEntity): DefectMetrics[] {
      return evaluation.perDefect ?? [];
    }

    @FieldResolver(() => [CurvePoint])
    rocCurve(@Root() evaluation: EvaluationEntity): CurvePoint[] {
      return evaluation.rocCurve ?? [];
    }

    @FieldResolver(() => EvaluationImageConnection, {
      description:
        'Per-image results so far, by score (highest first by default), with their verdicts at imageF1Threshold and heatmap and overlay PNGs',
    })
    images(
      @Root() evaluation: EvaluationEntity,
      @Args() args: EvaluationImagesArgs,
    ): Promise<Page<EvaluationImageResult>> {
      const { defectType, good, misclassified } = args;
      const direction = args.orderBy === EvaluationImageOrder.SCORE_ASC ? 'ASC' : 'DESC';
      return evaluations.images(evaluation, { defectType, good, misclassified }, direction, args);
    }

    @FieldResolver(() => [CurvePoint])
    proCurve(@Root() evaluation: EvaluationEntity): CurvePoint[] {
      return evaluation.proCurve ?? [];
    }
  }
  return EvaluationResolver;
}

/** `images` is a getter: the URL signing key is read when the process starts, after wiring. */
@Resolver(() => EvaluationImage)
export class EvaluationImageResolver {
  constructor(private readonly images: () => InspectionImages) {}

  @FieldResolver(() => Image, { nullable: true, description: 'null once the image was deleted' })
  image(@Root() result: EvaluationImageResult, @Ctx() context: RequestContext): Promise<ImageEntity | null> {
    return context.loaders.byId(ImageEntity).load(result.imageId);
  }

  @FieldResolver(() => String, { description: 'The anomaly map as a colour heatmap PNG, the size of the image' })
  heatmapUrl(@Root() result: EvaluationImageResult, @Ctx() context: RequestContext): string {
    return this.images().url(context.baseUrl, { subject: 'evaluation-image', ...ids(result), kind: 'heatmap' });
  }

  @FieldResolver(() => String, { description: 'The heatmap blended over the image, PNG' })
  overlayUrl(@Root() result: EvaluationImageResult, @Ctx() context: RequestContext): string {
    return this.images().url(context.baseUrl, { subject: 'evaluation-image', ...ids(result), kind: 'overlay' });
  }
}

function ids(result: EvaluationImageResult): { evaluationId: string; imageId: string } {
  return { evaluationId: result.evaluationId, imageId: result.imageId };
}
