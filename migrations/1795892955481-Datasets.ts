import { MigrationInterface, QueryRunner } from 'typeorm';

/** Datasets, categories, images, snapshots, pending uploads and import jobs. image_split is shared by image and image_upload. */
export class Datasets1795892955481 implements MigrationInterface {
  name = 'Datasets1795892955481';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "dataset" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "name" text NOT NULL,
                "description" text NOT NULL DEFAULT '',
                "created_by" uuid,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "deleted_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_36c1c67adb3d1dd69ae57f18913" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "UQ_dataset_name_live" ON "dataset" ("name")
            WHERE "deleted_at" IS NULL
        `);
    await queryRunner.query(`
            CREATE TABLE "category" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "dataset_id" uuid NOT NULL,
                "name" text NOT NULL,
                "created_by" uuid,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "deleted_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_9c4e4a89e3674fc9f382d733f03" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_category_dataset" ON "category" ("dataset_id")
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "UQ_category_dataset_name_live" ON "category" ("dataset_id", "name")
            WHERE "deleted_at" IS NULL
        `);
    await queryRunner.query(`
            CREATE TYPE "public"."image_split" AS ENUM('TRAIN', 'TEST')
        `);
    await queryRunner.query(`
            CREATE TABLE "image" (
                "id" uuid NOT NULL,
                "category_id" uuid NOT NULL,
                "split" "public"."image_split" NOT NULL,
                "defect_type" text,
                "width" integer NOT NULL,
                "height" integer NOT NULL,
                "channels" smallint NOT NULL,
                "format" text NOT NULL,
                "byte_size" integer NOT NULL,
                "sha256" character(64) NOT NULL,
                "object_key" text NOT NULL,
                "mask_object_key" text,
                "original_filename" text NOT NULL,
                "uploaded_by" uuid,
                "import_job_id" uuid,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "deleted_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_d6db1ab4ee9ad9dbe86c64e4cc3" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_image_category_created" ON "image" ("category_id", "created_at", "id")
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "UQ_image_category_sha256_live" ON "image" ("category_id", "sha256")
            WHERE "deleted_at" IS NULL
        `);
    await queryRunner.query(`
            CREATE TABLE "image_upload" (
                "id" uuid NOT NULL,
                "category_id" uuid NOT NULL,
                "split" "public"."image_split" NOT NULL,
                "defect_type" text,
                "filename" text NOT NULL,
                "content_type" text NOT NULL,
                "byte_size" integer NOT NULL,
                "sha256" character(64) NOT NULL,
                "with_mask" boolean NOT NULL,
                "mask_content_type" text,
                "mask_byte_size" integer,
                "requested_by" uuid NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "expires_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
                CONSTRAINT "PK_12a28d518ce8893af8e6a9fbd17" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_image_upload_category" ON "image_upload" ("category_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_image_upload_expires" ON "image_upload" ("expires_at")
        `);
    await queryRunner.query(`
            CREATE TYPE "public"."import_job_status" AS ENUM('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')
        `);
    await queryRunner.query(`
            CREATE TABLE "import_job" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "dataset_id" uuid NOT NULL,
                "source_s3_prefix" text,
                "source_local_path" text,
                "categories" text array,
                "status" "public"."import_job_status" NOT NULL DEFAULT 'QUEUED',
                "total" integer,
                "processed" integer NOT NULL DEFAULT '0',
                "imported" integer NOT NULL DEFAULT '0',
                "duplicates" integer NOT NULL DEFAULT '0',
                "errors" jsonb NOT NULL DEFAULT '[]',
                "error_count" integer NOT NULL DEFAULT '0',
                "attempts" integer NOT NULL DEFAULT '0',
                "requested_by" uuid,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "started_at" TIMESTAMP(3) WITH TIME ZONE,
                "finished_at" TIMESTAMP(3) WITH TIME ZONE,
                CONSTRAINT "PK_65b4c7eccb8120972a7b8da7682" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_import_job_status" ON "import_job" ("status")
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_import_job_dataset_created" ON "import_job" ("dataset_id", "created_at")
        `);
    await queryRunner.query(`
            CREATE TABLE "snapshot" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "category_id" uuid NOT NULL,
                "name" text NOT NULL,
                "image_count" integer NOT NULL,
                "created_by" uuid,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_47b29c1a6055220b1ebdafdf7b5" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "UQ_snapshot_category_name" ON "snapshot" ("category_id", "name")
        `);
    await queryRunner.query(`
            CREATE TABLE "snapshot_image" (
                "snapshot_id" uuid NOT NULL,
                "image_id" uuid NOT NULL,
                CONSTRAINT "PK_29381ecbd4c3be4729bceca7048" PRIMARY KEY ("snapshot_id", "image_id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "IDX_snapshot_image_image" ON "snapshot_image" ("image_id")
        `);
    await queryRunner.query(`
            ALTER TABLE "category"
            ADD CONSTRAINT "FK_7b4dc4d840dbc998605e5d430b1" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "image"
            ADD CONSTRAINT "FK_1f7dcbc861994678fc5299c9fee" FOREIGN KEY ("category_id") REFERENCES "category"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "image_upload"
            ADD CONSTRAINT "FK_7685cac17e8c3098d583738dcc8" FOREIGN KEY ("category_id") REFERENCES "category"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "import_job"
            ADD CONSTRAINT "FK_e6b2010902ba9e588f93d78c23f" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "snapshot"
            ADD CONSTRAINT "FK_da732bce9b993d44def0261d319" FOREIGN KEY ("category_id") REFERENCES "category"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "snapshot_image"
            ADD CONSTRAINT "FK_1bf274db7b59e395a218ab79e9e" FOREIGN KEY ("snapshot_id") REFERENCES "snapshot"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "snapshot_image"
            ADD CONSTRAINT "FK_c01f2df2b03e2eb1562e3d630b8" FOREIGN KEY ("image_id") REFERENCES "image"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "snapshot_image" DROP CONSTRAINT "FK_c01f2df2b03e2eb1562e3d630b8"
        `);
    await queryRunner.query(`
            ALTER TABLE "snapshot_image" DROP CONSTRAINT "FK_1bf274db7b59e395a218ab79e9e"
        `);
    await queryRunner.query(`
            ALTER TABLE "snapshot" DROP CONSTRAINT "FK_da732bce9b993d44def0261d319"
        `);
    await queryRunner.query(`
            ALTER TABLE "import_job" DROP CONSTRAINT "FK_e6b2010902ba9e588f93d78c23f"
        `);
    await queryRunner.query(`
            ALTER TABLE "image_upload" DROP CONSTRAINT "FK_7685cac17e8c3098d583738dcc8"
        `);
    await queryRunner.query(`
            ALTER TABLE "image" DROP CONSTRAINT "FK_1f7dcbc861994678fc5299c9fee"
        `);
    await queryRunner.query(`
            ALTER TABLE "category" DROP CONSTRAINT "FK_7b4dc4d840dbc998605e5d430b1"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_snapshot_image_image"
        `);
    await queryRunner.query(`
            DROP TABLE "snapshot_image"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."UQ_snapshot_category_name"
        `);
    await queryRunner.query(`
            DROP TABLE "snapshot"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_import_job_dataset_created"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_import_job_status"
        `);
    await queryRunner.query(`
            DROP TABLE "import_job"
        `);
    await queryRunner.query(`
            DROP TYPE "public"."import_job_status"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_image_upload_expires"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_image_upload_category"
        `);
    await queryRunner.query(`
            DROP TABLE "image_upload"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."UQ_image_category_sha256_live"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_image_category_created"
        `);
    await queryRunner.query(`
            DROP TABLE "image"
        `);
    await queryRunner.query(`
            DROP TYPE "public"."image_split"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."UQ_category_dataset_name_live"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."IDX_category_dataset"
        `);
    await queryRunner.query(`
            DROP TABLE "category"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."UQ_dataset_name_live"
        `);
    await queryRunner.query(`
            DROP TABLE "dataset"
        `);
  }
}
