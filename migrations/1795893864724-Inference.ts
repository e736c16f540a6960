import { MigrationInterface, QueryRunner } from 'typeorm';

/** Model versions and their pending uploads, inspections and their pending uploads, and the seed marker. */
export class Inference1795893864724 implements MigrationInterface {
  name = 'Inference1795893864724';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TYPE "public"."model_status" AS ENUM('VALIDATING', 'READY', 'FAILED')
        `);
    await queryRunner.query(`
            CREATE TABLE "model_version" (
                "id" uuid NOT NULL,
                "category_id" uuid NOT NULL,
                "name" text NOT NULL,
                "version" integer NOT NULL,
                "status" "public"."model_status" NOT NULL,
                "failure_code" text,
                "failure_reason" text,
                "object_key" text NOT NULL,
                "sha256" character(64) NOT NULL,
                "byte_size" integer NOT NULL,
                "metadata" jsonb,
                "input_width" integer,
                "input_height" integer,
                "mean" jsonb,
                "std" jsonb,
                "score_stats" jsonb,
                "map_stats" jsonb,
                "image_score_rule" text,
                "proposed_threshold" double precision,
                "threshold" double precision,
                "snapshot_id" uuid,
                "is_active" boolean NOT NULL DEFAULT false,
                "activated_at" TIMESTAMP(3) WITH TIME ZONE,
                "created_by" uuid,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "validated_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_1213bca4e8ee7ac1323cc4bf454" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "UQ_model_version_active_per_category" ON "model_version" ("category_id")
            WHERE "is_active"
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_model_version_category_created" ON "model_version" ("category_id", "created_at", "id")
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "UQ_model_version_category_name_version" ON "model_version" ("category_id", "name", "version")
        `);
    await queryRunner.query(`
            CREATE TABLE "model_upload" (
                "id" uuid NOT NULL,
                "byte_size" integer NOT NULL,
                "sha256" character(64),
                "requested_by" uuid NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "expires_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
                CONSTRAINT "PK_51ccf09d00008e52d5c98d0286d" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_model_upload_expires" ON "model_upload" ("expires_at")
        `);
    await queryRunner.query(`
            CREATE TABLE "inspection" (
                "id" uuid NOT NULL,
                "model_id" uuid NOT NULL,
                "category_id" uuid NOT NULL,
                "image_id" uuid,
                "input_object_key" text,
                "width" integer NOT NULL,
                "height" integer NOT NULL,
                "score" double precision NOT NULL,
                "normalized_score" double precision NOT NULL,
                "is_anomalous" boolean NOT NULL,
                "threshold" double precision NOT NULL,
                "regions" jsonb NOT NULL,
                "latency_ms" double precision NOT NULL,
                "heatmap_object_key" text NOT NULL,
                "overlay_object_key" text NOT NULL,
                "mask_object_key" text NOT NULL,
                "anomaly_map" bytea NOT NULL,
                "map_width" integer NOT NULL,
                "map_height" integer NOT NULL,
                "map_min" double precision NOT NULL,
                "map_max" double precision NOT NULL,
                "requested_by" uuid,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_1e895c2ae7b7d9d1ec464950013" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_inspection_image" ON "inspection" ("image_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_inspection_model_created" ON "inspection" ("model_id", "created_at", "id")
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_inspection_category_created" ON "inspection" ("category_id", "created_at", "id")
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_inspection_created" ON "inspection" ("created_at", "id")
        `);
    await queryRunner.query(`
            CREATE TABLE "inspection_upload" (
                "id" uuid NOT NULL,
                "content_type" text NOT NULL,
                "byte_size" integer NOT NULL,
                "sha256" character(64),
                "requested_by" uuid NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "expires_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
                CONSTRAINT "PK_e799865c423258445031f08818b" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_inspection_upload_expires" ON "inspection_upload" ("expires_at")
        `);
    await queryRunner.query(`
            CREATE TABLE "seed_marker" (
                "name" text NOT NULL,
                "details" jsonb NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_965475be0508625c628bd8c72a8" PRIMARY KEY ("name")
            )
        `);
    await queryRunner.query(`
            ALTER TABLE "model_version"
            ADD CONSTRAINT "FK_85e1b837147358477e2c0ebd140" FOREIGN KEY ("category_id") REFERENCES "category"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "model_version"
            ADD CONSTRAINT "FK_3d864a3465e198c9f30f1675961" FOREIGN KEY ("snapshot_id") REFERENCES "snapshot"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection"
            ADD CONSTRAINT "FK_77f433d88c89edc1d0fea362087" FOREIGN KEY ("model_id") REFERENCES "model_version"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection"
            ADD CONSTRAINT "FK_14a21babb3fb12ff2b199f3e9c4" FOREIGN KEY ("category_id") REFERENCES "category"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection"
            ADD CONSTRAINT "FK_8cbb2411fa8713ba242a21a1dd8" FOREIGN KEY ("image_id") REFERENCES "image"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "inspection" DROP CONSTRAINT "FK_8cbb2411fa8713ba242a21a1dd8"
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" DROP CONSTRAINT "FK_14a21babb3fb12ff2b199f3e9c4"
        `);
    await queryRunner.query(`
            ALTER TABLE "inspection" DROP CONSTRAINT "FK_77f433d88c89edc1d0fea362087"
        `);
    await queryRunner.query(`
            ALTER TABLE "model_version" DROP CONSTRAINT "FK_3d864a3465e198c9f30f1675961"
        `);
    await queryRunner.query(`
            ALTER TABLE "model_version" DROP CONSTRAINT "FK_85e1b837147358477e2c0ebd140"
        `);
    await queryRunner.query(`
            DROP TABLE "seed_marker"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_inspection_upload_expires"
        `);
    await queryRunner.query(`
            DROP TABLE "inspection_upload"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_inspection_created"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_inspection_category_created"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_inspection_model_created"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_inspection_image"
        `);
    await queryRunner.query(`
            DROP TABLE "inspection"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_model_upload_expires"
        `);
    await queryRunner.query(`
            DROP TABLE "model_upload"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."UQ_model_version_category_name_version"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_model_version_category_created"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."UQ_model_version_active_per_category"
        `);
    await queryRunner.query(`
            DROP TABLE "model_version"
        `);
    await queryRunner.query(`
            DROP TYPE "public"."model_status"
        `);
  }
}
