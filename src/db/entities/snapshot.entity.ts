import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  PrimaryGeneratedColumn,
} from 'typeorm';
import { CategoryEntity } from './category.entity';
import { ImageEntity } from './image.entity';

/** An immutable, named list of a category's images at one moment. */
@Entity({ name: 'snapshot' })
@Index('UQ_snapshot_category_name', ['categoryId', 'name'], { unique: true })
export class SnapshotEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'category_id', type: 'uuid' })
  categoryId!: string;

  @ManyToOne(() => CategoryEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'category_id' })
  category?: CategoryEntity;

  @Column({ type: 'text' })
  name!: string;

  @Column({ name: 'image_count', type: 'integer' })
  imageCount!: number;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}

@Entity({ name: 'snapshot_image' })
export class SnapshotImageEntity {
  @PrimaryColumn({ name: 'snapshot_id', type: 'uuid' })
  snapshotId!: string;

  @ManyToOne(() => SnapshotEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'snapshot_id' })
  snapshot?: SnapshotEntity;

  /** RESTRICT: the database itself refuses to remove an image a snapshot still lists. */
  @Index('IDX_snapshot_image_image')
  @PrimaryColumn({ name: 'image_id', type: 'uuid' })
  imageId!: string;

  @ManyToOne(() => ImageEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'image_id' })
  image?: ImageEntity;
}
