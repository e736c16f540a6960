import type { ApiProblem } from '../../api/errors';
import { forEachLimited, putToPresignedUrl, sha256Hex } from '../../api/presigned-put';
import { chunk, type UploadItem, type UploadStatus } from './upload-files';

/** Files per requestImageUploads and per confirmImageUploads (the service takes up to 100). */
export const BATCH_SIZE = 20;
/** PUTs to the object store at once. */
export const PARALLEL_PUTS = 4;

export interface UploadFile {
  filename: string;
  contentType: string;
  byteSize: number;
  sha256: string;
}

export interface UploadTarget {
  uploadId: string;
  url: string;
  headers: readonly { name: string; value: string }[];
}

/** What the service answered; a refusal may name one file of the request (`fileIndex`). */
export type TargetsAnswer =
  { ok: true; targets: UploadTarget[] } | { ok: false; problem: ApiProblem; fileIndex: number | null };

export type ConfirmAnswer =
  | { ok: true; results: Array<{ uploadId: string; stored: boolean; problem: ApiProblem | null }> }
  | { ok: false; problem: ApiProblem };

/** The two mutations, bound to the category and split being uploaded to. */
export interface UploadApi {
  requestTargets(files: UploadFile[]): Promise<TargetsAnswer>;
  confirm(uploadIds: string[]): Promise<ConfirmAnswer>;
}

export type UpdateItem = (id: string, patch: Partial<Pick<UploadItem, 'status' | 'progress' | 'problem'>>) => void;

interface Prepared {
  item: UploadItem;
  file: UploadFile;
}

/**
 * Uploads the items batch by batch: checksums, presigned PUT targets, the PUTs (a few at a time),
 * then one confirm for the batch. Only a confirmed upload becomes an image; an upload never
 * confirmed (stopped, tab closed) expires and the service's sweep removes it. Stopping aborts the
 * PUTs under way; whatever has no outcome by then is marked stopped.
 */
export async function uploadItems(
  items: readonly UploadItem[],
  api: UploadApi,
  update: UpdateItem,
  signal: AbortSignal,
): Promise<void> {
  const statuses = new Map<string, UploadStatus>();
  const tracked: UpdateItem = (id, patch) => {
    if (patch.status) statuses.set(id, patch.status);
    update(id, patch);
  };
  for (const batch of chunk(items, BATCH_SIZE)) {
    if (signal.aborted) break;
    await uploadBatch(batch, api, tracked, signal);
  }
  if (!signal.aborted) return;
  for (const item of items) {
    if (!FINISHED.has(statuses.get(item.id) ?? item.status)) update(item.id, { status: 'stopped' });
  }
}

const FINISHED: ReadonlySet<UploadStatus> = new Set(['stored', 'refused', 'failed', 'stopped']);

async function uploadBatch(
  batch: readonly UploadItem[],
  api: UploadApi,
  update: UpdateItem,
  signal: AbortSignal,
): Promise<void> {
  const prepared = await withChecksums(batch, update, signal);
  if (signal.aborted) return;
  const targeted = await requestTargets(prepared, api, update);
  if (signal.aborted) return;
  const uploaded = await putAll(targeted, update, signal);
  if (signal.aborted || uploaded.length === 0) return;
  await confirmAll(uploaded, api, update);
}

async function withChecksums(
  batch: readonly UploadItem[],
  update: UpdateItem,
  signal: AbortSignal,
): Promise<Prepared[]> {
  const prepared: Prepared[] = [];
  for (const item of batch) {
    if (signal.aborted) break;
    update(item.id, { status: 'hashing' });
    let sha256: string;
    try {
      sha256 = await sha256Hex(item.file);
    } catch (error) {
      // E.g. the file was moved or deleted since it was picked.
      const message = error instanceof Error ? error.message : String(error);
      update(item.id, { status: 'failed', problem: { code: 'UNREADABLE_FILE', message } });
      continue;
    }
    const filename = item.path.split('/').pop() || item.file.name;
    prepared.push({
      item,
      file: { filename, contentType: item.contentType ?? '', byteSize: item.file.size, sha256 },
    });
  }
  return prepared;
}

interface TargetedUpload extends Prepared {
  target: UploadTarget;
}

/**
 * The service refuses a request whole when one file is bad (e.g. too large); that file is
 * marked refused and the others are asked for again.
 */
async function requestTargets(prepared: Prepared[], api: UploadApi, update: UpdateItem): Promise<TargetedUpload[]> {
  let pending = prepared;
  while (pending.length > 0) {
    const answer = await api.requestTargets(pending.map(({ file }) => file));
    if (answer.ok) return pending.map((entry, index) => ({ ...entry, target: answer.targets[index] as UploadTarget }));
    const named = answer.fileIndex === null ? undefined : pending[answer.fileIndex];
    if (!named) {
      for (const { item } of pending) update(item.id, { status: 'failed', problem: answer.problem });
      return [];
    }
    update(named.item.id, { status: 'refused', problem: answer.problem });
    pending = pending.filter((entry) => entry !== named);
  }
  return [];
}

async function putAll(targeted: TargetedUpload[], update: UpdateItem, signal: AbortSignal): Promise<TargetedUpload[]> {
  const uploaded: TargetedUpload[] = [];
  await forEachLimited(targeted, PARALLEL_PUTS, async (entry) => {
    const { item, target } = entry;
    if (signal.aborted) return;
    update(item.id, { status: 'uploading', progress: 0 });
    try {
      await putToPresignedUrl(target.url, target.headers, item.file, {
        signal,
        onProgress: (progress) => update(item.id, { progress }),
      });
      update(item.id, { status: 'uploaded', progress: 1 });
      uploaded.push(entry);
    } catch (error) {
      if (signal.aborted) return;
      update(item.id, {
        status: 'failed',
        problem: { code: 'UPLOAD_FAILED', message: error instanceof Error ? error.message : String(error) },
      });
    }
  });
  return uploaded;
}

async function confirmAll(uploaded: TargetedUpload[], api: UploadApi, update: UpdateItem): Promise<void> {
  for (const { item } of uploaded) update(item.id, { status: 'confirming' });
  const answer = await api.confirm(uploaded.map(({ target }) => target.uploadId));
  if (!answer.ok) {
    for (const { item } of uploaded) update(item.id, { status: 'failed', problem: answer.problem });
    return;
  }
  const byUploadId = new Map(answer.results.map((result) => [result.uploadId, result]));
  for (const { item, target } of uploaded) {
    const result = byUploadId.get(target.uploadId);
    if (result?.stored) update(item.id, { status: 'stored', problem: null });
    else
      update(item.id, {
        status: 'refused',
        problem: result?.problem ?? { code: 'NOT_CONFIRMED', message: 'the service did not answer for this upload' },
      });
  }
}
