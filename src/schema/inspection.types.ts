import { ArgsType, Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';
import { Connection, PageArgs } from './connection.types';

@ObjectType({
  description: 'A connected region of the predicted mask (map >= threshold), in pixels of the inspected image',
})
export class AnomalyRegion {
  @Field(() => Int)
  x!: number;

  @Field(() => Int)
  y!: number;

  @Field(() => Int)
  width!: number;

  @Field(() => Int)
  height!: number;

  @Field(() => Int, { description: 'Pixels in the region' })
  area!: number;

  @Field(() => Float, { description: 'Mean anomaly-map value over the region' })
  meanScore!: number;

  @Field(() => Float)
  maxScore!: number;
}

@ObjectType({
  description:
    'One image run through one model version. The image URLs are signed URLs of this service (no API key needed until they expire) of PNGs the size of the image, drawn on their first request.',
})
export class Inspection {
  @Field(() => ID)
  id!: string;

  @Field(() => ID, { description: 'The model’s category' })
  categoryId!: string;

  @Field(() => Float, { description: 'The model’s raw image score (the maximum of its anomaly map)' })
  score!: number;

  @Field(() => Float, {
    description: 'score min-max normalised with the model’s held-out normal statistics, in [0, 1]',
  })
  normalizedScore!: number;

  @Field({ description: 'score >= threshold' })
  isAnomalous!: boolean;

  @Field(() => Float, { description: 'The raw-score threshold used: the request’s, else the model’s' })
  threshold!: number;

  @Field(() => [AnomalyRegion], { description: 'Regions of the predicted mask, largest first' })
  regions!: AnomalyRegion[];

  @Field(() => Float, {
    description: 'Service time from the request until the result was computed, in ms (storing the row follows)',
  })
  latencyMs!: number;

  @Field(() => Int, { description: 'Width of the inspected image (and of the result PNGs)' })
  width!: number;

  @Field(() => Int)
  height!: number;

  @Field()
  createdAt!: Date;
}

@ObjectType()
export class InspectionConnection extends Connection('Inspection', Inspection) {}

@InputType({
  description:
    'Which model (categoryId: its active one; or modelId: any READY version) and which image (imageId or uploadId)',
})
export class InspectInput {
  @Field(() => ID, { nullable: true })
  categoryId?: string | null;

  @Field(() => ID, { nullable: true })
  modelId?: string | null;

  @Field(() => ID, { nullable: true, description: 'An image of a dataset' })
  imageId?: string | null;

  @Field(() => ID, {
    nullable: true,
    description: 'From requestInspectionUpload, after the bytes were PUT; an upload is consumed by one inspect',
  })
  uploadId?: string | null;

  @Field(() => Float, { nullable: true, description: 'Raw-score threshold for this inspection only' })
  threshold?: number | null;
}

@InputType()
export class InspectBatchInput {
  @Field(() => ID, { description: 'Its active model inspects every image' })
  categoryId!: string;

  @Field(() => [ID], { description: 'At most INSPECT_BATCH_MAX_IMAGES dataset images; results come in this order' })
  imageIds!: string[];

  @Field(() => Float, { nullable: true })
  threshold?: number | null;
}

@InputType()
export class RequestInspectionUploadInput {
  @Field({ description: 'image/png, image/jpeg, image/bmp or image/tiff' })
  contentType!: string;

  @Field(() => Int, { description: 'Exact size of the bytes to be PUT; at most UPLOAD_MAX_BYTES' })
  byteSize!: number;

  @Field(() => String, { nullable: true, description: 'Hex SHA-256 of the bytes; checked by inspect when given' })
  sha256?: string | null;
}

@InputType({ description: 'Every given condition must hold' })
export class InspectionFilter {
  @Field(() => ID, { nullable: true })
  categoryId?: string | null;

  @Field(() => ID, { nullable: true })
  modelId?: string | null;

  @Field(() => Boolean, { nullable: true })
  isAnomalous?: boolean | null;

  @Field(() => Float, { nullable: true, description: 'Lowest raw score' })
  minScore?: number | null;

  @Field(() => Date, { nullable: true, description: 'createdAt at or after' })
  since?: Date | null;

  @Field(() => Date, { nullable: true, description: 'createdAt before' })
  until?: Date | null;
}

@ArgsType()
export class InspectionsArgs extends PageArgs {
  @Field(() => InspectionFilter, { nullable: true })
  filter?: InspectionFilter | null;
}
