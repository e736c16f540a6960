import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The objects an import is writing whose image row has not committed yet: recorded before each
 * write, removed in the transaction that inserts the row. What a killed process leaves here is
 * deleted from S3 when its job runs again (or ends), not an hour later by the orphan sweep.
 */
export class ImportPendingObjects1796100000110 implements MigrationInterface {
  name = 'ImportPendingObjects1796100000110';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "import_pending_object" (
                "object_key" text PRIMARY KEY,
                "import_job_id" uuid NOT NULL REFERENCES "import_job" ("id") ON DELETE CASCADE,
                "created_at" timestamptz(3) NOT NULL DEFAULT now()
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_import_pending_object_job" ON "import_pending_object" ("import_job_id")
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "import_pending_object"`);
  }
}
