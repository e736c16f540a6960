import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** What the first start seeded (e.g. `demo`), so a later start does not seed it again. */
@Entity({ name: 'seed_marker' })
export class SeedMarkerEntity {
  @PrimaryColumn({ type: 'text' })
  name!: string;

  /** Ids of what was created, for people looking at the database. */
  @Column({ type: 'jsonb' })
  details!: Record<string, string>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}
