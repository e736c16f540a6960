import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An inspection's exact anomaly map is written with its row, in the same INSERT, so that an
 * answered inspection survives a crash without an S3 PUT on the answer's path; it moves to its
 * S3 object (map_object_key) after the answer, and the column is cleared.
 */
export class InspectionPendingMaps1796100000001 implements MigrationInterface {
  name = 'InspectionPendingMaps1796100000001';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "inspection" ADD "pending_map" bytea
        `);
    // float32 maps hardly compress: no attempt on every INSERT.
    await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "pending_map" SET STORAGE EXTERNAL
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "inspection" DROP COLUMN "pending_map"
        `);
  }
}
