import { MigrationInterface, QueryRunner } from 'typeorm';

export class Foundation1795892084695 implements MigrationInterface {
  name = 'Foundation1795892084695';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TYPE "public"."api_key_role" AS ENUM('ADMIN', 'LABELER', 'VIEWER')
        `);
    await queryRunner.query(`
            CREATE TABLE "api_key" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "name" text NOT NULL,
                "role" "public"."api_key_role" NOT NULL,
                "secret_hash" bytea NOT NULL,
                "secret_prefix" text NOT NULL,
                "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(),
                "revoked_at" TIMESTAMP WITH TIME ZONE,
                "last_used_at" TIMESTAMP WITH TIME ZONE,
                CONSTRAINT "PK_b1bd840641b8acbaad89c3d8d11" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "IDX_b227edd98d489363d65e908e60" ON "api_key" ("secret_hash")
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            DROP INDEX "public"."IDX_b227edd98d489363d65e908e60"
        `);
    await queryRunner.query(`
            DROP TABLE "api_key"
        `);
    await queryRunner.query(`
            DROP TYPE "public"."api_key_role"
        `);
  }
}
