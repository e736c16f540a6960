import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';
import { CategoryEntity } from './category.entity';
import { ModelVersionEntity } from './model-version.entity';
import { SnapshotEntity } from './snapshot.entity';

export enum EvaluationStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}

export const FINAL_EVALUATION_STATUSES: ReadonlySet<EvaluationStatus> = new Set([
  EvaluationStatus.SUCCEEDED,
  EvaluationStatus.FAILED,
  EvaluationStatus.CANCELLED,
]);

export interface StoredCurvePoint {
  x: number;
  y: number;
}

/** Metrics of one defect type against the good TEST images (null where undefined, e.g. no defect pixel). */
export interface StoredDefectMetrics {
  defectType: string;
  /** Images of this defect type (the good images they are compared with are counted in goodImageCount). */
  imageCount: number;
  imageAuroc: number | null;
  pixelAuroc: number | null;
  aupro: number | null;
}

/**
 * A model evaluated on the TEST images of a snapshot: the state of record of the job (the
 * queue only delivers it) and, once SUCCEEDED, its metrics. Per-image results live in
 * evaluation_image_result, their anomaly maps in S3.
 */
@Entity({ name: 'evaluation' })
@Index('IDX_evaluation_model_created', ['modelId', 'createdAt', 'id'])
@Index('IDX_evaluation_category_created', ['categoryId', 'createdAt', 'id'])
export class EvaluationEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'model_id', type: 'uuid' })
  modelId!: string;

  @ManyToOne(() => ModelVersionEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'model_id' })
  model?: ModelVersionEntity;

  @Column({ name: 'category_id', type: 'uuid' })
  categoryId!: string;

  @ManyToOne(() => CategoryEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'category_id' })
  category?: CategoryEntity;

  /** null once the snapshot was deleted (the metrics stay; a run still going fails). */
  @Column({ name: 'snapshot_id', type: 'uuid', nullable: true })
  snapshotId!: string | null;

  @ManyToOne(() => SnapshotEntity, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'snapshot_id' })
  snapshot?: SnapshotEntity;

  @Index('IDX_evaluation_status')
  @Column({ type: 'enum', enum: EvaluationStatus, enumName: 'evaluation_status', default: EvaluationStatus.QUEUED })
  status!: EvaluationStatus;

  /** TEST images of the snapshot. */
  @Column({ type: 'integer' })
  total!: number;

  /** Always the number of evaluation_image_result rows, recounted with every batch written. */
  @Column({ type: 'integer', default: 0 })
  processed!: number;

  /** FPR limit of AUPRO. */
  @Column({ name: 'aupro_limit', type: 'double precision' })
  auproLimit!: number;

  /** How each image's score derives from its anomaly map (src/metrics IMAGE_SCORE_RULE). */
  @Column({ name: 'image_score_rule', type: 'text' })
  imageScoreRule!: string;

  /** Resolution of the maps and resized masks the metrics were computed at (the model's input size). */
  @Column({ name: 'map_width', type: 'integer', nullable: true })
  mapWidth!: number | null;

  @Column({ name: 'map_height', type: 'integer', nullable: true })
  mapHeight!: number | null;

  @Column({ name: 'good_image_count', type: 'integer', nullable: true })
  goodImageCount!: number | null;

  @Column({ name: 'defective_image_count', type: 'integer', nullable: true })
  defectiveImageCount!: number | null;

  @Column({ name: 'image_auroc', type: 'double precision', nullable: true })
  imageAuroc!: number | null;

  @Column({ name: 'pixel_auroc', type: 'double precision', nullable: true })
  pixelAuroc!: number | null;

  @Column({ type: 'double precision', nullable: true })
  aupro!: number | null;

  @Column({ name: 'image_f1_max', type: 'double precision', nullable: true })
  imageF1Max!: number | null;

  /** Image score at which imageF1Max is reached (anomalous when score >= it). */
  @Column({ name: 'image_f1_threshold', type: 'double precision', nullable: true })
  imageF1Threshold!: number | null;

  @Column({ name: 'pixel_f1_max', type: 'double precision', nullable: true })
  pixelF1Max!: number | null;

  @Column({ name: 'pixel_f1_threshold', type: 'double precision', nullable: true })
  pixelF1Threshold!: number | null;

  @Column({ name: 'per_defect', type: 'jsonb', nullable: true })
  perDefect!: StoredDefectMetrics[] | null;

  /** Image-level ROC curve (x = FPR, y = TPR), downsampled for plotting. */
  @Column({ name: 'roc_curve', type: 'jsonb', nullable: true })
  rocCurve!: StoredCurvePoint[] | null;

  /** Pixel-level PRO curve up to the AUPRO limit (x = FPR, y = PRO), downsampled for plotting. */
  @Column({ name: 'pro_curve', type: 'jsonb', nullable: true })
  proCurve!: StoredCurvePoint[] | null;

  /**
   * Set on an accuracy guard's evaluation (an INT8 version checked against an fp32 one): the id
   * of the reference evaluation whose metrics it must match. Kept when that row is deleted.
   */
  @Column({ name: 'accuracy_guard_of', type: 'uuid', nullable: true })
  accuracyGuardOf!: string | null;

  /** Why it FAILED, readable. */
  @Column({ type: 'text', nullable: true })
  error!: string | null;

  /** How many times a worker started on it (more than one after a crash or restart). */
  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'requested_by', type: 'uuid', nullable: true })
  requestedBy!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;

  @Column({ name: 'started_at', type: 'timestamptz', precision: 3, nullable: true })
  startedAt!: Date | null;

  @Column({ name: 'finished_at', type: 'timestamptz', precision: 3, nullable: true })
  finishedAt!: Date | null;
}
