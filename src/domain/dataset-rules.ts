/** Rules shared by the dataset services: names, defect types, split/mask consistency. */
import { ImageSplit } from '../db/entities/image.entity';
import { badInput } from '../errors';

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
    throw badInput(
      `category name ${JSON.stringify(name)} is not a plain folder name (1–64 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
      { argument },
    );
  }
  return name;
}

/** null stands for good; "good" itself is not a defect type. */
export function checkDefectType(defectType: string | null | undefined, argument = 'defectType'): string | null {
  if (defectType === null || defectType === undefined) return null;
  if (!isPlainFolderName(defectType) || defectType.toLowerCase() === 'good') {
    throw badInput(
      `defectType ${JSON.stringify(defectType)} must be a plain folder name other than "good" (omit it for good images)`,
      { argument },
    );
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
