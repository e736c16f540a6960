import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Secrets every replica of the service shares and none is configured with: the key that signs
 * the inspection image URLs (src/auth/signed-urls.ts). The first process to need one creates it.
 */
export class ServiceSecrets1796100000000 implements MigrationInterface {
  name = 'ServiceSecrets1796100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "service_secret" (
                "name" text PRIMARY KEY,
                "secret" bytea NOT NULL,
                "created_at" timestamptz(3) NOT NULL DEFAULT now()
            )
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "service_secret"`);
  }
}
