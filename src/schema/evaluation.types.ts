import { ArgsType, Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { EvaluationStatus } from '../db/entities/evaluation.entity';
import { Connection, PageArgs } from './connection.types';

export enum EvaluationImageOrder {
  SCORE_DESC = 'SCORE_DESC',
  SCORE_ASC = 'SCORE_ASC',
}

registerEnumType(EvaluationImageOrder, {
  name: 'EvaluationImageOrder',
  description: 'Order of an evaluation’s per-image results: by image score (ties by image id)',
});

registerEnumType(EvaluationStatus, {
  name: 'EvaluationStatus',
  description:
    'QUEUED → RUNNING → SUCCEEDED, FAILED (see error) or CANCELLED; RUNNING may go back to QUEUED when its worker stops',
});

@ObjectType({ description: 'A point of a curve for plotting' })
export class CurvePoint {
  @Field(() => Float)
  x!: number;

  @Field(() => Float)
  y!: number;
}

@ObjectType({
  description:
    'The images of one defect type against every good TEST image (the per-category tables of papers); null where undefined',
})
export class DefectMetrics {
  @Field()
  defectType!: string;

  @Field(() => Int, { description: 'Images of this defect type' })
  imageCount!: number;

  @Field(() => Float, { nullable: true })
  imageAuroc!: number | null;

  @Field(() => Float, { nullable: true })
  pixelAuroc!: number | null;

  @Field(() => Float, { nullable: true, description: 'Normalised AUPRO up to the evaluation’s auproLimit' })
  aupro!: number | null;
}

@ObjectType({
  description:
    'A model evaluated on the TEST images of a snapshot (MVTec AD protocol). Image label: 1 where the ground-truth mask has any defect pixel; ' +
    'image score: imageScoreRule (max) of the anomaly map. Pixel metrics are computed at the model’s input size (mapWidth × mapHeight), ' +
    'masks resized there by pixel-centre nearest neighbour. Metrics are null until SUCCEEDED, and where undefined (e.g. no defective image).',
})
export class Evaluation {
  @Field(() => ID)
  id!: string;

  @Field(() => EvaluationStatus)
  status!: EvaluationStatus;

  @Field(() => Int, { description: 'TEST images with a stored result' })
  processed!: number;

  @Field(() => Int, { description: 'TEST images of the snapshot' })
  total!: number;

  @Field(() => Float, { description: 'FPR limit of AUPRO' })
  auproLimit!: number;

  @Field({ description: 'How image scores derive from anomaly maps' })
  imageScoreRule!: string;

  @Field(() => Int, { nullable: true })
  mapWidth!: number | null;

  @Field(() => Int, { nullable: true })
  mapHeight!: number | null;

  @Field(() => Int, { nullable: true })
  goodImageCount!: number | null;

  @Field(() => Int, { nullable: true })
  defectiveImageCount!: number | null;

  @Field(() => Float, { nullable: true })
  imageAuroc!: number | null;

  @Field(() => Float, { nullable: true })
  pixelAuroc!: number | null;

  @Field(() => Float, { nullable: true, description: 'Normalised AUPRO up to auproLimit' })
  aupro!: number | null;

  @Field(() => Float, { nullable: true })
  imageF1Max!: number | null;

  @Field(() => Float, {
    nullable: true,
    description:
      'Image score at which imageF1Max is reached (anomalous when score >= it); applyEvaluationThreshold sets it on the model',
  })
  imageF1Threshold!: number | null;

  @Field(() => Float, { nullable: true })
  pixelF1Max!: number | null;

  @Field(() => Float, { nullable: true })
  pixelF1Threshold!: number | null;

  @Field(() => [DefectMetrics], { description: 'One entry per defect type, by name; empty until SUCCEEDED' })
  perDefect!: DefectMetrics[];

  @Field(() => [CurvePoint], {
    description: 'Image-level ROC curve (x = FPR, y = TPR), at most 200 points; empty until SUCCEEDED',
  })
  rocCurve!: CurvePoint[];

  @Field(() => [CurvePoint], {
    description: 'Pixel-level PRO curve (x = FPR, y = PRO) up to auproLimit, at most 200 points; empty until SUCCEEDED',
  })
  proCurve!: CurvePoint[];

  @Field(() => String, { nullable: true, description: 'Why it FAILED' })
  error!: string | null;

  @Field(() => ID, {
    nullable: true,
    description:
      'Set on an accuracy guard’s evaluation, queued by registerModel for an INT8 file (metadata `quantization`): the id of the ' +
      'fp32 version’s evaluation it is compared with (same snapshot and auproLimit), kept if that one is deleted. Its version ' +
      'stays VALIDATING until this evaluation ends, then becomes READY or FAILED (failureCode ACCURACY_GUARD); null for other evaluations',
  })
  accuracyGuardOf!: string | null;

  @Field(() => Int, { description: 'Times a worker started on it (more than one after a crash or restart)' })
  attempts!: number;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;

  @Field(() => Date, { nullable: true })
  startedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  finishedAt!: Date | null;
}

@ObjectType()
export class EvaluationConnection extends Connection('Evaluation', Evaluation) {}

@InputType()
export class StartEvaluationInput {
  @Field(() => ID, { description: 'A READY model version of the category' })
  modelId!: string;

  @Field(() => ID)
  categoryId!: string;

  @Field(() => ID, {
    nullable: true,
    description: 'A snapshot of the category; omitted: a new snapshot of its live images is taken',
  })
  snapshotId?: string | null;

  @Field(() => Float, { nullable: true, defaultValue: 0.3, description: 'FPR limit of AUPRO, in (0, 1]' })
  auproLimit?: number | null;
}

@ArgsType()
export class EvaluationsArgs extends PageArgs {
  @Field(() => ID, { nullable: true })
  modelId?: string | null;

  @Field(() => ID, { nullable: true })
  categoryId?: string | null;
}

@ObjectType({
  description:
    'One TEST image’s result within an evaluation. Its image URLs are signed URLs of this service (no API key needed until they expire) of PNGs the size of the image, drawn on their first request.',
})
export class EvaluationImage {
  @Field(() => Float, { description: 'The image score (imageScoreRule of its anomaly map)' })
  score!: number;

  @Field(() => Boolean, {
    nullable: true,
    description:
      'score >= the evaluation’s imageF1Threshold; null while it has none (not SUCCEEDED, or no defective image)',
  })
  isAnomalous!: boolean | null;
}

@ObjectType()
export class EvaluationImageConnection extends Connection('EvaluationImage', EvaluationImage) {}

@ArgsType()
export class EvaluationImagesArgs extends PageArgs {
  @Field(() => String, { nullable: true, description: 'Only images of this defect type' })
  defectType?: string | null;

  @Field(() => Boolean, {
    nullable: true,
    description: 'true: only good images (no defect type); false: only defective ones',
  })
  good?: boolean | null;

  @Field(() => Boolean, {
    nullable: true,
    description:
      'true: only images whose isAnomalous differs from their ground truth (false positives and false negatives); false: only the others. EVALUATION_HAS_NO_THRESHOLD while the evaluation has no imageF1Threshold',
  })
  misclassified?: boolean | null;

  @Field(() => EvaluationImageOrder, { defaultValue: EvaluationImageOrder.SCORE_DESC })
  orderBy!: EvaluationImageOrder;
}
