import { MODEL_RUN_COST, perInspectedImage } from '../graphql/operation-costs';
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
import { ImageEntity } from '../db/entities/image.entity';
import { InspectionEntity } from '../db/entities/inspection.entity';
import { ModelVersionEntity } from '../db/entities/model-version.entity';
import type { Page } from '../db/pagination';
import { notFound } from '../errors';
import type { RequestContext } from '../graphql/context';
import type { Topics } from '../pubsub/pubsub';
import { Image } from '../schema/image.types';
import {
  InspectBatchInput,
  InspectInput,
  Inspection,
  InspectionConnection,
  InspectionsArgs,
  RequestInspectionUploadInput,
} from '../schema/inspection.types';
import { ModelVersion } from '../schema/model.types';
import { UploadTarget } from '../schema/upload.types';
import type { UploadTargetInfo } from '../services/presigned-upload.service';
import type { InspectionImages } from '../services/inspection-images.service';
import type { InspectionService } from '../services/inspection.service';
import { callerOf } from './principal';

type InspectionCreated = Topics['INSPECTION_CREATED'][0];

interface InspectionCreatedArgs {
  categoryId?: string | null;
  onlyAnomalous?: boolean | null;
}

@Resolver(() => Inspection)
export class InspectionResolver {
  constructor(
    private readonly inspectionService: InspectionService,
    private readonly images: InspectionImages,
  ) {}

  @Authorized(Role.LABELER)
  @Mutation(() => Inspection, {
    complexity: ({ childComplexity }) => MODEL_RUN_COST + childComplexity,
    description:
      'Runs one image through a model; the result is stored before the answer, its images drawn on first request',
  })
  inspect(@Arg('input') input: InspectInput, @Ctx() context: RequestContext): Promise<InspectionEntity> {
    return this.inspectionService.inspect(input, callerOf(context));
  }

  @Authorized(Role.LABELER)
  @Mutation(() => [Inspection], {
    complexity: perInspectedImage,
    description: 'Dataset images through the category’s active model, all or none; results in the order of imageIds',
  })
  inspectBatch(@Arg('input') input: InspectBatchInput, @Ctx() context: RequestContext): Promise<InspectionEntity[]> {
    return this.inspectionService.inspectBatch(input, callerOf(context));
  }

  @Authorized(Role.LABELER)
  @Mutation(() => UploadTarget, {
    description: 'A presigned PUT URL for an image that is not in a dataset; PUT it, then inspect with its uploadId',
  })
  requestInspectionUpload(
    @Arg('input') input: RequestInspectionUploadInput,
    @Ctx() context: RequestContext,
  ): Promise<UploadTargetInfo> {
    return this.inspectionService.requestUpload(input, callerOf(context));
  }

  @Authorized(Role.VIEWER)
  @Query(() => InspectionConnection, { description: 'Inspections, newest first' })
  inspections(@Args() args: InspectionsArgs): Promise<Page<InspectionEntity>> {
    return this.inspectionService.list(args.filter ?? {}, args);
  }

  @Authorized(Role.VIEWER)
  @Query(() => Inspection, { nullable: true, description: 'An inspection by id; null if there is none' })
  inspection(@Arg('id', () => ID) id: string): Promise<InspectionEntity | null> {
    return this.inspectionService.findById(id);
  }

  @Authorized(Role.VIEWER)
  @Subscription(() => Inspection, {
    topics: 'INSPECTION_CREATED',
    filter: ({ payload, args }: { payload: InspectionCreated; args: InspectionCreatedArgs }) =>
      (!args.categoryId || payload.categoryId === args.categoryId.toLowerCase()) &&
      (!args.onlyAnomalous || payload.isAnomalous),
    description: 'Every new inspection, made by any server process; of one category if given',
  })
  async inspectionCreated(
    @Root() event: InspectionCreated,
    @Ctx() context: RequestContext,
    @Arg('categoryId', () => ID, { nullable: true }) _categoryId?: string | null,
    @Arg('onlyAnomalous', () => Boolean, { nullable: true, defaultValue: false }) _onlyAnomalous?: boolean | null,
  ): Promise<InspectionEntity> {
    const inspection = await context.loaders.byId(InspectionEntity).load(event.inspectionId);
    if (!inspection) throw notFound('Inspection', event.inspectionId);
    return inspection;
  }

  @FieldResolver(() => ModelVersion)
  async model(@Root() inspection: InspectionEntity, @Ctx() context: RequestContext): Promise<ModelVersionEntity> {
    const model = await context.loaders.byId(ModelVersionEntity).load(inspection.modelId);
    if (!model) throw notFound('Model', inspection.modelId);
    return model;
  }

  @FieldResolver(() => Image, {
    nullable: true,
    description: 'The dataset image inspected; null for an inspection upload',
  })
  async image(@Root() inspection: InspectionEntity, @Ctx() context: RequestContext): Promise<ImageEntity | null> {
    return inspection.imageId ? context.loaders.byId(ImageEntity).load(inspection.imageId) : null;
  }

  @FieldResolver(() => String, { description: 'The anomaly map as a colour heatmap PNG, the size of the image' })
  anomalyMapUrl(@Root() inspection: InspectionEntity, @Ctx() context: RequestContext): string {
    return this.images.url(context.baseUrl, { subject: 'inspection', inspectionId: inspection.id, kind: 'heatmap' });
  }

  @FieldResolver(() => String, {
    description:
      'The raw anomaly map at the model’s input size as a NumPy .npy file (float32, shape (height, width), C order): numpy.load reads it',
  })
  anomalyMapDataUrl(@Root() inspection: InspectionEntity, @Ctx() context: RequestContext): string {
    return this.images.url(context.baseUrl, { subject: 'inspection-map', inspectionId: inspection.id });
  }

  @FieldResolver(() => String, { description: 'The heatmap blended over the image, PNG' })
  overlayUrl(@Root() inspection: InspectionEntity, @Ctx() context: RequestContext): string {
    return this.images.url(context.baseUrl, { subject: 'inspection', inspectionId: inspection.id, kind: 'overlay' });
  }

  @FieldResolver(() => String, { description: 'The predicted mask (255 where the map >= threshold), one-channel PNG' })
  maskUrl(@Root() inspection: InspectionEntity, @Ctx() context: RequestContext): string {
    return this.images.url(context.baseUrl, { subject: 'inspection', inspectionId: inspection.id, kind: 'mask' });
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: 'The uploaded image inspected, for an inspection upload',
  })
  inputUrl(@Root() inspection: InspectionEntity): Promise<string | null> {
    return inspection.inputObjectKey
      ? this.inspectionService.presignedInputUrl(inspection.inputObjectKey)
      : Promise.resolve(null);
  }
}
