import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export enum Role {
  ADMIN = 'ADMIN',
  LABELER = 'LABELER',
  VIEWER = 'VIEWER',
}

@Entity({ name: 'api_key' })
export class ApiKeyEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'enum', enum: Role, enumName: 'api_key_role' })
  role!: Role;

  /** SHA-256 of the secret: keys are 256-bit random, so a slow KDF adds nothing. */
  @Index({ unique: true })
  @Column({ name: 'secret_hash', type: 'bytea' })
  secretHash!: Buffer;

  /** First characters of the secret, shown in listings so people can tell keys apart. */
  @Column({ name: 'secret_prefix', type: 'text' })
  secretPrefix!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true })
  lastUsedAt!: Date | null;
}
