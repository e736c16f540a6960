import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An evaluation queued by the accuracy guard of an INT8 model version names the evaluation of
 * the fp32 version it is compared with. No foreign key: the id stays when that evaluation is
 * deleted (with its model), so the row still says it was a guard, and the guard fails.
 */
export class EvaluationAccuracyGuard1796100000210 implements MigrationInterface {
  name = 'EvaluationAccuracyGuard1796100000210';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "evaluation" ADD "accuracy_guard_of" uuid`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "evaluation" DROP COLUMN "accuracy_guard_of"`);
  }
}
