import { JOB_COST } from '../graphql/operation-costs';
import DataLoader from 'dataloader';
import {
  Arg,
  Args,
  Authorized,
  Ctx,
  FieldResolver,
  Float,
  ID,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { Role } from '../auth/principal';
import { CategoryEntity } from '../db/entities/category.entity';
import type { EntityLoaders } from '../db/entity-loaders';
import { ModelStatus, ModelVersionEntity } from '../db/entities/model-version.entity';
import type { Page } from '../db/pagination';
import { notFound } from '../errors';
import type { RequestContext } from '../graphql/context';
import type { Topics } from '../pubsub/pubsub';
import { Category } from '../schema/dataset.types';
import {
  ModelMetadataEntry,
  ModelsArgs,
  ModelVersion,
  ModelVersionConnection,
  ModelVersionEvent,
  ModelVersionEventKind,
  RegisterModelInput,
  RequestModelUploadInput,
} from '../schema/model.types';
import { UploadTarget } from '../schema/upload.types';
import type { UploadTargetInfo } from '../services/presigned-upload.service';
import type { ModelService } from '../services/model.service';
import { callerOf } from './principal';

type ModelEvent = Topics['MODEL_VERSION_CHANGED'][0];

@Resolver(() => ModelVersion)
export class ModelResolver {
  constructor(private readonly modelService: ModelService) {}

  @Authorized(Role.VIEWER)
  @Query(() => ModelVersionConnection, { description: 'Model versions of a category, newest first' })
  models(@Args() args: ModelsArgs): Promise<Page<ModelVersionEntity>> {
    return this.modelService.list(args.categoryId, args);
  }

  @Authorized(Role.VIEWER)
  @Query(() => ModelVersion, { nullable: true, description: 'A model version by id; null if there is none' })
  model(@Arg('id', () => ID) id: string): Promise<ModelVersionEntity | null> {
    return this.modelService.findById(id);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => UploadTarget, {
    description: 'A presigned PUT URL for an ONNX file; PUT it there (with `headers`), then registerModel',
  })
  requestModelUpload(
    @Arg('input') input: RequestModelUploadInput,
    @Ctx() context: RequestContext,
  ): Promise<UploadTargetInfo> {
    return this.modelService.requestUpload(input, callerOf(context));
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => ModelVersion, {
    complexity: ({ childComplexity }) => JOB_COST + childComplexity,
    description:
      'Stores the uploaded ONNX file as a new version and validates it (contract checks and one warm-up inference) before answering. ' +
      'A file that is not a contract model comes back as a FAILED version with failureCode INVALID_MODEL; it is never served. ' +
      'An INT8 file (metadata `quantization`) registered in a category where an fp32 version has a SUCCEEDED evaluation comes back ' +
      'VALIDATING: an accuracy guard evaluation of it runs on that evaluation’s snapshot (listed in `evaluations`, with ' +
      'accuracyGuardOf; follow it with evaluationProgress), and the version becomes READY only if image AUROC, pixel AUROC and ' +
      'AUPRO each dropped by at most MODEL_ACCURACY_TOLERANCE_POINTS, else FAILED with failureCode ACCURACY_GUARD; ' +
      'modelVersionChanged announces the outcome. Without such an evaluation an INT8 file is validated like any other.',
  })
  registerModel(@Arg('input') input: RegisterModelInput, @Ctx() context: RequestContext): Promise<ModelVersionEntity> {
    return this.modelService.register(input, callerOf(context));
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => ModelVersion, {
    complexity: ({ childComplexity }) => JOB_COST + childComplexity,
    description: 'Makes a READY version the one inspect uses for its category (loaded and warmed up first)',
  })
  activateModel(@Arg('id', () => ID) id: string): Promise<ModelVersionEntity> {
    return this.modelService.activate(id);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => ModelVersion, { description: 'Sets the raw-score threshold of a READY version' })
  setModelThreshold(
    @Arg('id', () => ID) id: string,
    @Arg('threshold', () => Float) threshold: number,
  ): Promise<ModelVersionEntity> {
    return this.modelService.setThreshold(id, threshold);
  }

  @Authorized(Role.VIEWER)
  @Subscription(() => ModelVersionEvent, {
    topics: 'MODEL_VERSION_CHANGED',
    filter: ({ payload, args }: { payload: ModelEvent; args: { categoryId: string } }) =>
      payload.categoryId === args.categoryId.toLowerCase(),
    description:
      'Versions of a category registered, validated (READY or FAILED), activated or re-thresholded, from any server process',
  })
  async modelVersionChanged(
    @Arg('categoryId', () => ID) _categoryId: string,
    @Root() event: ModelEvent,
    @Ctx() context: RequestContext,
  ): Promise<ModelVersionEvent> {
    const model = await context.loaders.byId(ModelVersionEntity).load(event.modelId);
    if (!model) throw notFound('Model', event.modelId);
    return { kind: ModelVersionEventKind[event.kind], status: ModelStatus[event.status], model };
  }

  @FieldResolver(() => Category)
  async category(@Root() model: ModelVersionEntity, @Ctx() context: RequestContext): Promise<CategoryEntity> {
    const category = await context.loaders.byId(CategoryEntity).load(model.categoryId);
    if (!category) throw notFound('Category', model.categoryId);
    return category;
  }

  @FieldResolver(() => [ModelMetadataEntry], { description: 'The metadata_props of the ONNX file (empty until READY)' })
  metadata(@Root() model: ModelVersionEntity): ModelMetadataEntry[] {
    return Object.entries(model.metadata ?? {}).map(([key, value]) => ({ key, value }));
  }
}

const activeModelLoaders = new WeakMap<EntityLoaders, DataLoader<string, ModelVersionEntity | null>>();

@Resolver(() => Category)
export class CategoryActiveModelResolver {
  constructor(private readonly modelService: ModelService) {}

  @FieldResolver(() => ModelVersion, { nullable: true, description: 'The version inspect uses for this category' })
  activeModel(@Root() category: CategoryEntity, @Ctx() context: RequestContext): Promise<ModelVersionEntity | null> {
    let loader = activeModelLoaders.get(context.loaders);
    if (!loader) {
      loader = new DataLoader<string, ModelVersionEntity | null>(async (categoryIds) => {
        const active = await this.modelService.activeByCategories(categoryIds);
        return categoryIds.map((id) => active.get(id) ?? null);
      });
      activeModelLoaders.set(context.loaders, loader);
    }
    return loader.load(category.id);
  }
}
