import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { hasRole, Role, type Principal } from '../auth/principal';
import type { ImageUploadEntity } from '../db/entities/image-upload.entity';
import type { ImageEntity, ImageSplit } from '../db/entities/image.entity';
import type { Database } from '../db/repositories';
import type { NewImageUpload } from '../db/repositories/image-upload.repository';
import { checkDefectType, checkSplitAndDefect, needsMask } from '../domain/dataset-rules';
import { AppError, badInput, ErrorCode, type ErrorCodeValue } from '../errors';
import { ACCEPTED_CONTENT_TYPES, IMAGE_CONTENT_TYPES } from '../images/image-bytes';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { mapConcurrently } from '../utils/concurrency';
import { isUuid, SHA256_HEX } from '../utils/ids';
import type { CategoryService } from './category.service';
import { sha256Hex, type ImageIngestService } from './image-ingest.service';
import type { ImageService } from './image.service';

export const MAX_FILES_PER_UPLOAD_REQUEST = 100;
const CONFIRM_CONCURRENCY = 8;

export interface UploadFileRequest {
  filename: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  withMask?: boolean | null;
  maskContentType?: string | null;
  maskByteSize?: number | null;
}

export interface UploadRequest {
  categoryId: string;
  split: ImageSplit;
  defectType?: string | null;
  files: UploadFileRequest[];
}

export interface HttpHeader {
  name: string;
  value: string;
}

export interface UploadTargetInfo {
  uploadId: string;
  url: string;
  maskUrl: string | null;
  /** Headers the PUT must carry (their values are part of the signature). */
  headers: HttpHeader[];
  maskHeaders: HttpHeader[] | null;
  expiresAt: Date;
}

export interface UploadConfirmation {
  uploadId: string;
  image: ImageEntity | null;
  code: ErrorCodeValue | null;
  message: string | null;
}

export interface UploadSettings {
  maxBytes: number;
  urlExpirySeconds: number;
}

/** Why one upload was refused; the upload's row and objects are removed unless `keepPending`. */
class UploadRefused extends Error {
  constructor(
    readonly code: ErrorCodeValue,
    message: string,
    readonly keepPending = false,
  ) {
    super(message);
  }
}

function displayFilename(filename: string, index: number): string {
  const base = path.posix.basename(filename.replaceAll('\\', '/')).trim();
  if (base.length === 0 || base.length > 255 || /[\p{Cc}]/u.test(base)) {
    throw badInput(`files[${index}].filename must be 1 to 255 printable characters`, { argument: `files[${index}].filename` });
  }
  return base;
}

function checkContentType(contentType: string, argument: string): string {
  const normalized = contentType.trim().toLowerCase();
  if (!ACCEPTED_CONTENT_TYPES.has(normalized)) {
    throw new AppError(ErrorCode.INVALID_IMAGE, `${argument} must be one of ${Object.values(IMAGE_CONTENT_TYPES).join(', ')}; got "${contentType}"`, { argument });
  }
  return normalized;
}

/**
 * Sample uploads through presigned PUT URLs: the bytes go from the client straight to S3
 * (`uploads/<uploadId>/file|mask`), never through GraphQL. Confirming checks what arrived,
 * copies it to its final key and creates the image; a refused upload leaves nothing behind.
 */
export class ImageUploadService {
  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly categories: CategoryService,
    private readonly images: ImageService,
    private readonly ingest: ImageIngestService,
    private readonly settings: UploadSettings,
    private readonly logger: Logger,
  ) {}

  private checkByteSize(byteSize: number, argument: string): number {
    if (!Number.isInteger(byteSize) || byteSize < 1) throw badInput(`${argument} must be a positive number of bytes`, { argument });
    if (byteSize > this.settings.maxBytes) {
      throw new AppError(ErrorCode.IMAGE_TOO_LARGE, `${argument} is ${byteSize} bytes; at most ${this.settings.maxBytes} are accepted`, { argument, maxBytes: this.settings.maxBytes });
    }
    return byteSize;
  }

  /** All or nothing: a request with one bad file is refused whole, before anything is stored. */
  async request(request: UploadRequest, principal: Principal): Promise<UploadTargetInfo[]> {
    const category = await this.categories.requireLive(request.categoryId);
    const defectType = checkDefectType(request.defectType);
    checkSplitAndDefect(request.split, defectType);
    if (request.files.length === 0 || request.files.length > MAX_FILES_PER_UPLOAD_REQUEST) {
      throw badInput(`files must hold 1 to ${MAX_FILES_PER_UPLOAD_REQUEST} entries`, { argument: 'files' });
    }
    const maskRequired = needsMask(request.split, defectType);
    const expiresAt = new Date(Date.now() + this.settings.urlExpirySeconds * 1000);
    const rows = request.files.map((file, index): NewImageUpload => {
      const argument = `files[${index}]`;
      const sha256 = file.sha256.trim().toLowerCase();
      if (!SHA256_HEX.test(sha256)) throw badInput(`${argument}.sha256 must be 64 hex digits`, { argument: `${argument}.sha256` });
      const withMask = file.withMask ?? false;
      if (withMask && !maskRequired) throw badInput(`${argument}: only defective TEST images have a ground-truth mask`, { argument: `${argument}.withMask` });
      if (!withMask && maskRequired) {
        throw new AppError(ErrorCode.MASK_MISSING, `${argument}: a defective TEST image needs its ground-truth mask (withMask: true)`, { argument: `${argument}.withMask` });
      }
      return {
        id: randomUUID(),
        categoryId: category.id,
        split: request.split,
        defectType,
        filename: displayFilename(file.filename, index),
        contentType: checkContentType(file.contentType, `${argument}.contentType`),
        byteSize: this.checkByteSize(file.byteSize, `${argument}.byteSize`),
        sha256,
        withMask,
        maskContentType: withMask ? checkContentType(file.maskContentType ?? 'image/png', `${argument}.maskContentType`) : null,
        maskByteSize: withMask && file.maskByteSize !== null && file.maskByteSize !== undefined ? this.checkByteSize(file.maskByteSize, `${argument}.maskByteSize`) : null,
        requestedBy: principal.apiKeyId,
        expiresAt,
      };
    });
    await this.db.imageUploads.insert(rows);
    const expiresInSeconds = this.settings.urlExpirySeconds;
    return Promise.all(
      rows.map(async (row) => ({
        uploadId: row.id,
        url: await this.objectStore.presignPut(objectKeys.upload(row.id, 'file'), { contentType: row.contentType, contentLength: row.byteSize, expiresInSeconds }),
        headers: [{ name: 'Content-Type', value: row.contentType }],
        maskUrl: row.maskContentType
          ? await this.objectStore.presignPut(objectKeys.upload(row.id, 'mask'), { contentType: row.maskContentType, contentLength: row.maskByteSize ?? undefined, expiresInSeconds })
          : null,
        maskHeaders: row.maskContentType ? [{ name: 'Content-Type', value: row.maskContentType }] : null,
        expiresAt: row.expiresAt,
      })),
    );
  }

  /** Validates each upload on its own: one refused upload does not stop the others. */
  async confirm(uploadIds: readonly string[], principal: Principal): Promise<UploadConfirmation[]> {
    if (uploadIds.length === 0 || uploadIds.length > MAX_FILES_PER_UPLOAD_REQUEST) {
      throw badInput(`uploadIds must hold 1 to ${MAX_FILES_PER_UPLOAD_REQUEST} ids`, { argument: 'uploadIds' });
    }
    const distinct = [...new Set(uploadIds)];
    const outcomes = await mapConcurrently(distinct, CONFIRM_CONCURRENCY, (uploadId) => this.confirmOne(uploadId, principal));
    // The upload objects of confirmed images, removed in one request for the whole batch.
    await this.images.removeObjects(
      outcomes.flatMap((outcome) => (outcome.image ? [objectKeys.upload(outcome.uploadId, 'file'), objectKeys.upload(outcome.uploadId, 'mask')] : [])),
    );
    const byId = new Map(distinct.map((uploadId, index) => [uploadId, outcomes[index] as UploadConfirmation]));
    return uploadIds.map((uploadId) => byId.get(uploadId) as UploadConfirmation);
  }

  private async confirmOne(uploadId: string, principal: Principal): Promise<UploadConfirmation> {
    const upload = isUuid(uploadId) ? await this.db.imageUploads.findById(uploadId.toLowerCase()) : null;
    if (!upload || (upload.requestedBy !== principal.apiKeyId && !hasRole(principal, Role.ADMIN))) {
      return { uploadId, image: null, code: ErrorCode.NOT_FOUND, message: `upload ${uploadId} was not found (or was already confirmed)` };
    }
    try {
      const image = await this.validateAndStore(upload);
      return { uploadId, image, code: null, message: null };
    } catch (error) {
      if (!(error instanceof UploadRefused)) {
        // Not the upload's fault (database or S3 trouble): it stays pending, to be confirmed again.
        this.logger.error({ err: error, uploadId }, 'confirming an upload failed');
        return { uploadId, image: null, code: ErrorCode.INTERNAL_SERVER_ERROR, message: 'the upload could not be stored now; confirm it again' };
      }
      if (!error.keepPending) await this.discard(upload);
      return { uploadId, image: null, code: error.code, message: error.message };
    }
  }

  private async validateAndStore(upload: ImageUploadEntity): Promise<ImageEntity> {
    if (upload.expiresAt.getTime() <= Date.now()) throw new UploadRefused(ErrorCode.UPLOAD_EXPIRED, 'the upload URL has expired; request a new one');
    const fileKey = objectKeys.upload(upload.id, 'file');
    const maskKey = objectKeys.upload(upload.id, 'mask');
    const [bytes, maskBytes] = await Promise.all([this.readUpload(fileKey), upload.withMask ? this.readUpload(maskKey) : Promise.resolve(null)]);
    if (!bytes || (upload.withMask && !maskBytes)) {
      throw new UploadRefused(ErrorCode.UPLOAD_INCOMPLETE, `the ${bytes ? 'mask' : 'image'} has not been uploaded yet; PUT it to its URL, then confirm again`, true);
    }
    this.checkArrivedSize(bytes.length, upload.byteSize, 'image');
    if (maskBytes) this.checkArrivedSize(maskBytes.length, upload.maskByteSize, 'mask');

    const sha256 = sha256Hex(bytes);
    if (sha256 !== upload.sha256) throw new UploadRefused(ErrorCode.CHECKSUM_MISMATCH, `the bytes received have SHA-256 ${sha256}, not the declared ${upload.sha256}`);
    const outcome = await this.ingest.ingest({
      categoryId: upload.categoryId,
      split: upload.split,
      defectType: upload.defectType,
      bytes,
      sha256,
      readMask: maskBytes ? () => Promise.resolve(maskBytes) : null,
      originalFilename: upload.filename,
      uploadedBy: upload.requestedBy,
      importJobId: null,
      // The bytes are in the bucket already: copied to their final keys there.
      store: (part, key, _bytes, contentType) => this.objectStore.copy(part === 'image' ? fileKey : maskKey, key, contentType),
      beforeInsert: async (tx) => {
        // Claiming the upload row first makes a second, concurrent confirm of it find nothing.
        if (!(await tx.imageUploads.claim(upload.id))) {
          throw new UploadRefused(ErrorCode.NOT_FOUND, 'the upload was confirmed or removed meanwhile', true);
        }
      },
    });
    switch (outcome.kind) {
      case 'inserted':
        return outcome.image;
      case 'duplicate':
        throw new UploadRefused(ErrorCode.DUPLICATE_IMAGE, `the category already holds this image (${outcome.existing.id})`);
      case 'category-gone':
        throw new UploadRefused(ErrorCode.NOT_FOUND, 'the category was deleted');
      case 'invalid':
        throw new UploadRefused(outcome.code, outcome.message);
    }
  }

  /**
   * The bytes of an upload, or null if nothing arrived yet. Reads one byte more than the limit
   * and no further, so an oversized upload is recognised without being downloaded.
   */
  private async readUpload(key: string): Promise<Buffer | null> {
    try {
      return await this.objectStore.getRange(key, this.settings.maxBytes + 1);
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw error;
    }
  }

  private checkArrivedSize(actual: number, declared: number | null, part: 'image' | 'mask'): void {
    if (actual > this.settings.maxBytes) throw new UploadRefused(ErrorCode.IMAGE_TOO_LARGE, `the ${part} received is larger than the ${this.settings.maxBytes} bytes accepted`);
    if (declared !== null && actual !== declared) {
      throw new UploadRefused(ErrorCode.CHECKSUM_MISMATCH, `the ${part} received is ${actual} bytes, but ${declared} were declared`);
    }
  }

  /** Removes a pending upload: objects first, so a failure leaves the row for the sweep to retry. */
  async discard(upload: Pick<ImageUploadEntity, 'id'>): Promise<void> {
    await this.objectStore.delete([objectKeys.upload(upload.id, 'file'), objectKeys.upload(upload.id, 'mask')]);
    await this.db.imageUploads.delete(upload.id);
  }
}
