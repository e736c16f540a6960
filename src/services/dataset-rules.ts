/** Rules shared by the dataset services: names, defect types, split/mask consistency. */
import { QueryFailedError, type EntityManager } from 'typeorm';
import { ImageSplit } from '../db/entities/image.entity';
import { AppError, ErrorCode, badInput } from '../errors';

/**
 * A plain folder name: what a category or defect folder may be called, so that it maps to
 * one directory level of the MVTec layout and can never climb out of it.
 */
export const PLAIN_FOLDER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isPlainFolderName(name: string): boolean {
  return PLAIN_FOLDER_NAME.test(name) && !name.includes('..');
}

export function checkDatasetName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 100 || /[\p{Cc}]/u.test(trimmed)) {
    throw badInput('name must be 1 to 100 printable characters', { argument: 'name' });
  }
  return trimmed;
}

export function checkDescription(description: string | null | undefined): string {
  const value = (description ?? '').trim();
  if (value.length > 2000) throw badInput('description must be at most 2000 characters', { argument: 'description' });
  return value;
}

export function checkCategoryName(name: string, argument = 'name'): string {
  if (!isPlainFolderName(name)) {
    throw badInput(`category name ${JSON.stringify(name)} is not a plain folder name (1–64 letters, digits, '.', '_' or '-', starting with a letter or digit)`, { argument });
  }
  return name;
}

/** null stands for good; "good" itself is not a defect type. */
export function checkDefectType(defectType: string | null | undefined, argument = 'defectType'): string | null {
  if (defectType === null || defectType === undefined) return null;
  if (!isPlainFolderName(defectType) || defectType.toLowerCase() === 'good') {
    throw badInput(`defectType ${JSON.stringify(defectType)} must be a plain folder name other than "good" (omit it for good images)`, { argument });
  }
  return defectType;
}

/** TRAIN holds only good images (as in MVTec AD); a mask goes with, and only with, a defective TEST image. */
export function checkSplitAndDefect(split: ImageSplit, defectType: string | null): void {
  if (split === ImageSplit.TRAIN && defectType !== null) {
    throw badInput('TRAIN images are good images: defectType must be omitted', { argument: 'defectType' });
  }
}

export function needsMask(split: ImageSplit, defectType: string | null): boolean {
  return split === ImageSplit.TEST && defectType !== null;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function postgresErrorCode(error: unknown): string | undefined {
  if (error instanceof QueryFailedError) return (error.driverError as { code?: string }).code;
  return (error as { code?: string } | null)?.code;
}

export const UNIQUE_VIOLATION = '23505';

export function conflict(message: string, details?: Record<string, unknown>): AppError {
  return new AppError(ErrorCode.CONFLICT, message, details);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An id that is not even a UUID cannot exist; answering NOT_FOUND beats a database cast error. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

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

/** Maps with at most `concurrency` calls in flight; results in input order. */
export async function mapConcurrently<T, R>(items: readonly T[], concurrency: number, map: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await map(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
