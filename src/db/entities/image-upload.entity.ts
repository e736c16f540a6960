import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { CategoryEntity } from './category.entity';
import { ImageSplit } from './image.entity';

/** A pending presigned upload: what the client declared, checked at confirm time. */
@Entity({ name: 'image_upload' })
export class ImageUploadEntity {
  /** The upload id, part of the object keys `uploads/<id>/file|mask`. */
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Index('IDX_image_upload_category')
  @Column({ name: 'category_id', type: 'uuid' })
  categoryId!: string;

  @ManyToOne(() => CategoryEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'category_id' })
  category?: CategoryEntity;

  @Column({ type: 'enum', enum: ImageSplit, enumName: 'image_split' })
  split!: ImageSplit;

  @Column({ name: 'defect_type', type: 'text', nullable: true })
  defectType!: string | null;

  @Column({ type: 'text' })
  filename!: string;

  @Column({ name: 'content_type', type: 'text' })
  contentType!: string;

  @Column({ name: 'byte_size', type: 'integer' })
  byteSize!: number;

  @Column({ type: 'char', length: 64 })
  sha256!: string;

  @Column({ name: 'with_mask', type: 'boolean' })
  withMask!: boolean;

  @Column({ name: 'mask_content_type', type: 'text', nullable: true })
  maskContentType!: string | null;

  @Column({ name: 'mask_byte_size', type: 'integer', nullable: true })
  maskByteSize!: number | null;

  @Column({ name: 'requested_by', type: 'uuid' })
  requestedBy!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Index('IDX_image_upload_expires')
  @Column({ name: 'expires_at', type: 'timestamptz', precision: 3 })
  expiresAt!: Date;
}
