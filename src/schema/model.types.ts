import { ArgsType, Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ModelStatus } from '../db/entities/model-version.entity';
import { Connection, PageArgs } from './connection.types';

registerEnumType(ModelStatus, {
  name: 'ModelStatus',
  description:
    'VALIDATING: stored, being checked by onnxruntime (an INT8 file: also while its accuracy guard evaluation runs, see ' +
    'registerModel); READY: may be activated and served; FAILED: never served (see failureCode, failureReason)',
});

export enum ModelVersionEventKind {
  REGISTERED = 'REGISTERED',
  READY = 'READY',
  FAILED = 'FAILED',
  ACTIVATED = 'ACTIVATED',
  THRESHOLD_CHANGED = 'THRESHOLD_CHANGED',
}
registerEnumType(ModelVersionEventKind, { name: 'ModelVersionEventKind' });

@ObjectType({ description: 'Image-score statistics of held-out normal images, from the model metadata' })
export class ModelScoreStats {
  @Field(() => Int)
  count!: number;

  @Field(() => Float)
  min!: number;

  @Field(() => Float)
  max!: number;

  @Field(() => Float)
  mean!: number;

  @Field(() => Float)
  std!: number;

  @Field(() => Float)
  p50!: number;

  @Field(() => Float)
  p95!: number;

  @Field(() => Float)
  p99!: number;
}

@ObjectType({ description: 'Anomaly-map pixel statistics of held-out normal images (they scale the heatmap colours)' })
export class ModelMapStats {
  @Field(() => Float)
  min!: number;

  @Field(() => Float)
  max!: number;

  @Field(() => Float)
  p99!: number;
}

@ObjectType({ description: 'One entry of the ONNX file’s metadata_props' })
export class ModelMetadataEntry {
  @Field()
  key!: string;

  @Field()
  value!: string;
}

@ObjectType({ description: 'A registered ONNX model file: version 1, 2, … per category and name' })
export class ModelVersion {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  categoryId!: string;

  @Field()
  name!: string;

  @Field(() => Int)
  version!: number;

  @Field(() => ModelStatus)
  status!: ModelStatus;

  @Field(() => String, {
    nullable: true,
    description:
      'Stable code of a FAILED validation: INVALID_MODEL (the file breaks docs/model-contract.md), VALIDATION_INTERRUPTED, ' +
      'ACCURACY_GUARD (an INT8 file whose guard evaluation dropped image AUROC, pixel AUROC or AUPRO by more than ' +
      'MODEL_ACCURACY_TOLERANCE_POINTS against the fp32 version’s evaluation, or did not finish; failureReason names each ' +
      'metric, both values, the drop in points and the reference evaluation), …',
  })
  failureCode!: string | null;

  @Field(() => String, { nullable: true, description: 'Why validation FAILED, readable' })
  failureReason!: string | null;

  @Field({ description: 'Lowercase hex SHA-256 of the ONNX file' })
  sha256!: string;

  @Field(() => Int)
  byteSize!: number;

  @Field(() => Int, { nullable: true, description: 'Model input width, from the metadata (null until READY)' })
  inputWidth!: number | null;

  @Field(() => Int, { nullable: true })
  inputHeight!: number | null;

  @Field(() => [Float], { nullable: true, description: 'Per-channel RGB normalisation mean' })
  mean!: number[] | null;

  @Field(() => [Float], { nullable: true })
  std!: number[] | null;

  @Field(() => ModelScoreStats, { nullable: true })
  scoreStats!: ModelScoreStats | null;

  @Field(() => ModelMapStats, { nullable: true })
  mapStats!: ModelMapStats | null;

  @Field(() => String, { nullable: true, description: 'How the image score derives from the anomaly map (max)' })
  imageScoreRule!: string | null;

  @Field(() => Float, { nullable: true, description: 'The threshold the trainer proposed' })
  proposedThreshold!: number | null;

  @Field(() => Float, {
    nullable: true,
    description: 'Raw-score threshold inspect uses unless a request gives one; the proposed one unless set',
  })
  threshold!: number | null;

  @Field(() => ID, { nullable: true, description: 'The training data snapshot, when known' })
  snapshotId!: string | null;

  @Field({ description: 'The version inspect uses for its category (one per category)' })
  isActive!: boolean;

  @Field(() => Date, { nullable: true })
  activatedAt!: Date | null;

  @Field(() => ID, { nullable: true, description: 'API key that registered it' })
  createdBy!: string | null;

  @Field()
  createdAt!: Date;

  @Field(() => Date, { nullable: true, description: 'When validation ended (READY or FAILED)' })
  validatedAt!: Date | null;
}

@ObjectType()
export class ModelVersionConnection extends Connection('ModelVersion', ModelVersion) {}

@ObjectType({ description: 'A model version changed; `status` is its status when the event happened' })
export class ModelVersionEvent {
  @Field(() => ModelVersionEventKind)
  kind!: ModelVersionEventKind;

  @Field(() => ModelStatus)
  status!: ModelStatus;

  @Field(() => ModelVersion, { description: 'The version as it is now' })
  model!: ModelVersion;
}

@InputType()
export class RequestModelUploadInput {
  @Field(() => Int, { description: 'Exact size of the ONNX file; at most MODEL_MAX_BYTES' })
  byteSize!: number;

  @Field(() => String, { nullable: true, description: 'Hex SHA-256 of the file; checked at registration when given' })
  sha256?: string | null;
}

@InputType()
export class RegisterModelInput {
  @Field(() => ID)
  categoryId!: string;

  @Field({ description: 'Versions are numbered per category and name' })
  name!: string;

  @Field(() => ID, { description: 'From requestModelUpload, after the file was PUT to its URL' })
  uploadId!: string;

  @Field(() => Float, {
    nullable: true,
    description: 'Raw-score threshold; default: the proposed_threshold of the metadata',
  })
  threshold?: number | null;

  @Field(() => ID, {
    nullable: true,
    description:
      'The snapshot the model was trained on; default: training_data.snapshot_id of the metadata, if it is one of this category',
  })
  snapshotId?: string | null;
}

@ArgsType()
export class ModelsArgs extends PageArgs {
  @Field(() => ID)
  categoryId!: string;
}
