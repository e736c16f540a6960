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
import { DatasetEntity } from './dataset.entity';

export enum ImportJobStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
}

export const FINAL_IMPORT_STATUSES: ReadonlySet<ImportJobStatus> = new Set([
  ImportJobStatus.SUCCEEDED,
  ImportJobStatus.FAILED,
]);

/** One problem found while importing: a file (relative to the source) and why it was not imported. */
export interface ImportProblem {
  path: string;
  code: string;
  message: string;
}

/** The state of record of an MVTec import; the queue only delivers the work. */
@Entity({ name: 'import_job' })
@Index('IDX_import_job_dataset_created', ['datasetId', 'createdAt'])
export class ImportJobEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'dataset_id', type: 'uuid' })
  datasetId!: string;

  @ManyToOne(() => DatasetEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'dataset_id' })
  dataset?: DatasetEntity;

  /** Prefix in the service's bucket, ending in '/'; exactly one of this and sourceLocalPath is set. */
  @Column({ name: 'source_s3_prefix', type: 'text', nullable: true })
  sourceS3Prefix!: string | null;

  /** Resolved real path, below one of IMPORT_ROOTS. */
  @Column({ name: 'source_local_path', type: 'text', nullable: true })
  sourceLocalPath!: string | null;

  /** Category folders to import; null: every folder in the source. */
  @Column({ type: 'text', array: true, nullable: true })
  categories!: string[] | null;

  @Index('IDX_import_job_status')
  @Column({ type: 'enum', enum: ImportJobStatus, enumName: 'import_job_status', default: ImportJobStatus.QUEUED })
  status!: ImportJobStatus;

  /** Images found in the source; null until it has been scanned. */
  @Column({ type: 'integer', nullable: true })
  total!: number | null;

  @Column({ type: 'integer', default: 0 })
  processed!: number;

  @Column({ type: 'integer', default: 0 })
  imported!: number;

  /** Images already in their category (same sha256): skipped. */
  @Column({ type: 'integer', default: 0 })
  duplicates!: number;

  /** Problems, the first MAX_STORED_PROBLEMS of them; errorCount counts them all. */
  @Column({ type: 'jsonb', default: () => "'[]'" })
  errors!: ImportProblem[];

  @Column({ name: 'error_count', type: 'integer', default: 0 })
  errorCount!: number;

  /** How many times a worker started on it (more than one after a restart). */
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
