import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { DatasetEntity } from './dataset.entity';

/** One kind of object in a dataset (e.g. `bottle`); one model is trained per category. */
@Entity({ name: 'category' })
@Index('UQ_category_dataset_name_live', ['datasetId', 'name'], { unique: true, where: '"deleted_at" IS NULL' })
export class CategoryEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('IDX_category_dataset')
  @Column({ name: 'dataset_id', type: 'uuid' })
  datasetId!: string;

  @ManyToOne(() => DatasetEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'dataset_id' })
  dataset?: DatasetEntity;

  @Column({ type: 'text' })
  name!: string;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Column({ name: 'deleted_at', type: 'timestamptz', precision: 3, nullable: true })
  deletedAt!: Date | null;
}
