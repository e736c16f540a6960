import type { EvaluationStatus } from '../../gql/graphql';

/** Statuses after which an evaluation changes no more (evaluationProgress completes). */
const FINISHED: ReadonlySet<EvaluationStatus> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

export function isInProgress(status: EvaluationStatus): boolean {
  return !FINISHED.has(status);
}

/** "12 / 16 images", or "QUEUED" while a queued evaluation has not started on any image. */
export function progressText(status: EvaluationStatus, processed: number, total: number): string {
  if (status === 'QUEUED' && processed === 0) return `Queued: ${total} images to run`;
  return `${processed} / ${total} images`;
}

/** The AUPRO FPR limit a user typed, if it is in (0, 1]; null otherwise. */
export function parseAuproLimit(text: string): number | null {
  const value = Number(text);
  return text.trim() !== '' && Number.isFinite(value) && value > 0 && value <= 1 ? value : null;
}
