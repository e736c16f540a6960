import { QueryFailedError, type EntityManager } from 'typeorm';

/**
 * Rows of any statement, RETURNING included: TypeORM's plain `query` answers UPDATE and
 * DELETE with `[rows, count]` but other statements with the rows alone.
 */
export async function queryRows<T>(manager: EntityManager, sql: string, parameters: unknown[]): Promise<T[]> {
  const runner = manager.queryRunner ?? manager.connection.createQueryRunner();
  try {
    const result = await runner.query(sql, parameters, true);
    return result.records as T[];
  } finally {
    if (!manager.queryRunner) await runner.release();
  }
}

export function postgresErrorCode(error: unknown): string | undefined {
  if (error instanceof QueryFailedError) return (error.driverError as { code?: string }).code;
  return (error as { code?: string } | null)?.code;
}

export const UNIQUE_VIOLATION = '23505';
