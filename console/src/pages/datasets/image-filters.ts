import type { Split } from '../../gql/graphql';

export type ImageLabel = 'good' | 'defective';

/** What the category's image grid shows; kept in the URL so that a link reopens the same view. */
export interface ImageFilters {
  split: Split | null;
  label: ImageLabel | null;
  /** Only with label 'defective' (a defect type implies it). */
  defectType: string | null;
}

export const NO_FILTERS: ImageFilters = { split: null, label: null, defectType: null };

const SPLITS: readonly Split[] = ['TRAIN', 'TEST'];

export function filtersFromParams(params: URLSearchParams): ImageFilters {
  const split = params.get('split');
  const label = params.get('label');
  const defectType = params.get('defect') || null;
  return normalized({
    split: SPLITS.find((candidate) => candidate === split) ?? null,
    label: label === 'good' || label === 'defective' ? label : null,
    defectType,
  });
}

export function filtersToParams(filters: ImageFilters): URLSearchParams {
  const { split, label, defectType } = normalized(filters);
  const params = new URLSearchParams();
  if (split) params.set('split', split);
  if (label) params.set('label', label);
  if (defectType) params.set('defect', defectType);
  return params;
}

/** A defect type means defective; good images have none. */
export function normalized(filters: ImageFilters): ImageFilters {
  if (filters.defectType && filters.label !== 'good') return { ...filters, label: 'defective' };
  if (filters.label === 'good') return { ...filters, defectType: null };
  return filters;
}

export function hasFilters(filters: ImageFilters): boolean {
  return filters.split !== null || filters.label !== null || filters.defectType !== null;
}

/** The `images` arguments for these filters (absent ones are left out, not null). */
export function imagesArguments(filters: ImageFilters): { split?: Split; good?: boolean; defectType?: string } {
  const { split, label, defectType } = normalized(filters);
  return {
    ...(split ? { split } : {}),
    ...(label ? { good: label === 'good' } : {}),
    ...(defectType ? { defectType } : {}),
  };
}
