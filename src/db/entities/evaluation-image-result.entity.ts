import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { EvaluationEntity } from './evaluation.entity';
import { ImageEntity } from './image.entity';

/**
 * One TEST image's result within an evaluation. The primary key (evaluation, image) makes
 * re-processing after a crash an upsert: no image is ever counted twice.
 */
@Entity({ name: 'evaluation_image_result' })
export class EvaluationImageResultEntity {
  @PrimaryColumn({ name: 'evaluation_id', type: 'uuid' })
  evaluationId!: string;

  @ManyToOne(() => EvaluationEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'evaluation_id' })
  evaluation?: EvaluationEntity;

  @Index('IDX_evaluation_image_result_image')
  @PrimaryColumn({ name: 'image_id', type: 'uuid' })
  imageId!: string;

  // Images go only when no snapshot lists them any more (their evaluation's snapshot was deleted).
  @ManyToOne(() => ImageEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'image_id' })
  image?: ImageEntity;

  /** The image score, derived from the stored (decoded) map by scoreRule. */
  @Column({ type: 'double precision' })
  score!: number;

  @Column({ name: 'score_rule', type: 'text' })
  scoreRule!: string;

  /** evaluations/<evaluationId>/maps/<imageId>.bin (anomaly-map-object.ts). */
  @Column({ name: 'map_object_key', type: 'text' })
  mapObjectKey!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}
