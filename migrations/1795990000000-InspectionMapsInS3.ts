import { MigrationInterface, QueryRunner } from "typeorm";

/**
 * An inspection's anomaly map moves from a bytea in its row (128 KiB at 256 × 256, in every
 * row and in the WAL) to an S3 object next to its PNGs. Rows written before keep their bytea;
 * new rows have map_object_key instead.
 */
export class InspectionMapsInS31795990000000 implements MigrationInterface {
    name = 'InspectionMapsInS31795990000000'

    public async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`
            ALTER TABLE "inspection" ADD "map_object_key" text
        `);
        await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "anomaly_map" DROP NOT NULL
        `);
        await queryRunner.query(`
            ALTER TABLE "inspection" ADD CONSTRAINT "CHK_inspection_map_stored" CHECK ("anomaly_map" IS NOT NULL OR "map_object_key" IS NOT NULL)
        `);
    }

    public async down(queryRunner: QueryRunner): Promise<void> {
        // The maps in S3 cannot come back into the rows: those rows get an empty map.
        await queryRunner.query(`
            ALTER TABLE "inspection" DROP CONSTRAINT "CHK_inspection_map_stored"
        `);
        await queryRunner.query(`
            UPDATE "inspection" SET "anomaly_map" = '\\x'::bytea WHERE "anomaly_map" IS NULL
        `);
        await queryRunner.query(`
            ALTER TABLE "inspection" ALTER COLUMN "anomaly_map" SET NOT NULL
        `);
        await queryRunner.query(`
            ALTER TABLE "inspection" DROP COLUMN "map_object_key"
        `);
    }

}
