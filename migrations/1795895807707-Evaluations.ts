import { MigrationInterface, QueryRunner } from 'typeorm';

/** Evaluations of a model on a snapshot's TEST split, and their per-image results (maps in S3). */
export class Evaluations1795895807707 implements MigrationInterface {
  name = 'Evaluations1795895807707';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TYPE "public"."evaluation_status" AS ENUM(
                'QUEUED',
                'RUNNING',
                'SUCCEEDED',
                'FAILED',
                'CANCELLED'
            )
        `);
    await queryRunner.query(`
            CREATE TABLE "evaluation" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "model_id" uuid NOT NULL,
                "category_id" uuid NOT NULL,
                "snapshot_id" uuid,
                "status" "public"."evaluation_status" NOT NULL DEFAULT 'QUEUED',
                "total" integer NOT NULL,
                "processed" integer NOT NULL DEFAULT '0',
                "aupro_limit" double precision NOT NULL,
                "image_score_rule" text NOT NULL,
                "map_width" integer,
                "map_height" integer,
                "good_image_count" integer,
                "defective_image_count" integer,
                "image_auroc" double precision,
                "pixel_auroc" double precision,
                "aupro" double precision,
                "image_f1_max" double precision,
                "image_f1_threshold" double precision,
                "pixel_f1_max" double precision,
                "pixel_f1_threshold" double precision,
                "per_defect" jsonb,
                "roc_curve" jsonb,
                "pro_curve" jsonb,
                "error" text,
                "attempts" integer NOT NULL DEFAULT '0',
                "requested_by" uuid,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "started_at" TIMESTAMP(3) WITH TIME ZONE,
                "finished_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_b72edd439b9db736f55b584fa54" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_evaluation_status" ON "evaluation" ("status")
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_evaluation_category_created" ON "evaluation" ("category_id", "created_at", "id")
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_evaluation_model_created" ON "evaluation" ("model_id", "created_at", "id")
        `);
    await queryRunner.query(`
            CREATE TABLE "evaluation_image_result" (
                "evaluation_id" uuid NOT NULL,
                "image_id" uuid NOT NULL,
                "score" double precision NOT NULL,
                "score_rule" text NOT NULL,
                "map_object_key" text NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_e90199da5a2af927042bcf2f8c1" PRIMARY KEY ("evaluation_id", "image_id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_evaluation_image_result_image" ON "evaluation_image_result" ("image_id")
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation"
            ADD CONSTRAINT "FK_c17b397207be77aeae7035a792c" FOREIGN KEY ("model_id") REFERENCES "model_version"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation"
            ADD CONSTRAINT "FK_850e14b9ae1bc1e64e1884aa573" FOREIGN KEY ("category_id") REFERENCES "category"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation"
            ADD CONSTRAINT "FK_327cdc1bd5ed405b708dbfc965b" FOREIGN KEY ("snapshot_id") REFERENCES "snapshot"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation_image_result"
            ADD CONSTRAINT "FK_a02ec0cd09aaf2815c99638ba52" FOREIGN KEY ("evaluation_id") REFERENCES "evaluation"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation_image_result"
            ADD CONSTRAINT "FK_faed2ff5241c3ff6599940e8b21" FOREIGN KEY ("image_id") REFERENCES "image"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "evaluation_image_result" DROP CONSTRAINT "FK_faed2ff5241c3ff6599940e8b21"
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation_image_result" DROP CONSTRAINT "FK_a02ec0cd09aaf2815c99638ba52"
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation" DROP CONSTRAINT "FK_327cdc1bd5ed405b708dbfc965b"
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation" DROP CONSTRAINT "FK_850e14b9ae1bc1e64e1884aa573"
        `);
    await queryRunner.query(`
            ALTER TABLE "evaluation" DROP CONSTRAINT "FK_c17b397207be77aeae7035a792c"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_evaluation_image_result_image"
        `);
    await queryRunner.query(`
            DROP TABLE "evaluation_image_result"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_evaluation_model_created"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_evaluation_category_created"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_evaluation_status"
        `);
    await queryRunner.query(`
            DROP TABLE "evaluation"
        `);
    await queryRunner.query(`
            DROP TYPE "public"."evaluation_status"
        `);
  }
}
