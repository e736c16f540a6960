import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An inspection's anomaly map moves from a bytea in its row (128 KiB at 256 × 256, in every
 * row and in the WAL) to an S3 object next to its PNGs, written after the inspection was
 * answered. Rows written before keep their bytea and its range (map_min, map_max); new rows get
 * map_object_key once the map is stored (null until then, or if that failed), and no range: the
 * object's header holds it.
 */
export class InspectionMapsInS31795990000000 implements MigrationInterface {
  name = 'InspectionMapsInS31795990000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "inspection" ADD "map_object_key" text
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "anomaly_map" DROP NOT NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "map_min" DROP NOT NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "map_max" DROP NOT NULL
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // The maps in S3 cannot come back into the rows: those rows get an empty map.
    await queryRunner.query(`
            UPDATE "inspection" SET "anomaly_map" = '\\x'::bytea, "map_min" = 0, "map_max" = 0 WHERE "anomaly_map" IS NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "map_max" SET NOT NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "map_min" SET NOT NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "anomaly_map" SET NOT NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" DROP COLUMN "map_object_key"
        `);
  }
}
