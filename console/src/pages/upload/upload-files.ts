import type { ApiProblem } from '../../api/errors';

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/** The file a refused requestImageUploads names in its `argument` extension (`files[3].byteSize`), if any. */
export function fileIndexOfArgument(argument: unknown): number | null {
  if (typeof argument !== 'string') return null;
  const match = /^files\[(\d+)\]/.exec(argument);
  return match ? Number(match[1]) : null;
}

export type UploadStatus =
  | 'skipped'
  | 'queued'
  | 'hashing'
  | 'uploading'
  | 'uploaded'
  | 'confirming'
  | 'stored'
  | 'refused'
  | 'failed'
  | 'stopped';

export interface UploadItem {
  id: string;
  file: File;
  /** Where it was picked: the path within a dropped or chosen folder, else the file name. */
  path: string;
  /** null: not an image type the service takes; such a file is skipped, never sent. */
  contentType: string | null;
  status: UploadStatus;
  /** Of the PUT, 0 to 1. */
  progress: number;
  problem: ApiProblem | null;
}

export const IN_PROGRESS: ReadonlySet<UploadStatus> = new Set(['hashing', 'uploading', 'uploaded', 'confirming']);

export interface UploadSummary {
  stored: number;
  refused: number;
  failed: number;
  stopped: number;
  skipped: number;
  queued: number;
  inProgress: number;
}

export function summarize(items: readonly UploadItem[]): UploadSummary {
  const summary: UploadSummary = { stored: 0, refused: 0, failed: 0, stopped: 0, skipped: 0, queued: 0, inProgress: 0 };
  for (const item of items) {
    if (IN_PROGRESS.has(item.status)) summary.inProgress += 1;
    else if (item.status in summary) summary[item.status as keyof UploadSummary] += 1;
  }
  return summary;
}

/** "12 stored, 1 refused" and whatever else there is, as the summary line says it. */
export function summaryLine(summary: UploadSummary): string {
  const parts = [`${summary.stored} stored`, `${summary.refused} refused`];
  if (summary.failed > 0) parts.push(`${summary.failed} failed`);
  if (summary.stopped > 0) parts.push(`${summary.stopped} stopped`);
  if (summary.skipped > 0) parts.push(`${summary.skipped} skipped`);
  return parts.join(', ');
}

/** Picking the same file twice (again, or inside a folder dropped after it) lists it once. */
export function fileIdentity(path: string, file: File): string {
  return `${path}\u0000${file.size}\u0000${file.lastModified}`;
}
