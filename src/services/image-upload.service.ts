import path from 'node:path';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal';
import type { ImageUploadEntity } from '../db/entities/image-upload.entity';
import type { ImageEntity, ImageSplit } from '../db/entities/image.entity';
import type { Database } from '../db/repositories';
import { checkDefectType, checkSplitAndDefect, needsMask } from '../domain/dataset-rules';
import { AppError, badInput, ErrorCode, type ErrorCodeValue } from '../errors';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { mapConcurrently } from '../utils/concurrency';
import type { CategoryService } from './category.service';
import { sha256Hex, type ImageIngestService } from './image-ingest.service';
import {
  checkImageContentType,
  PresignedUploads,
  UploadRefusal,
  type NewPendingUpload,
  type UploadKind,
  type UploadTargetInfo,
} from './presigned-upload.service';

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

/** A refusal of what the ingest unit was given: unlike those of `receive`, the upload is still there (confirmOne discards it). */
class IngestRefusal extends UploadRefusal {}

function displayFilename(filename: string, index: number): string {
  const base = path.posix.basename(filename.replaceAll('\\', '/')).trim();
  if (base.length === 0 || base.length > 255 || /[\p{Cc}]/u.test(base)) {
    throw badInput(`files[${index}].filename must be 1 to 255 printable characters`, {
      argument: `files[${index}].filename`,
    });
  }
  return base;
}

/** Dataset images with their optional ground-truth mask: two objects, `uploads/<uploadId>/file|mask`. */
function imageUploadKind(settings: UploadSettings): UploadKind<ImageUploadEntity> {
  const notArrived = (noun: string): string =>
    `the ${noun} has not been uploaded yet; PUT it to its URL, then confirm again`;
  return {
    label: 'image upload',
    repository: (repositories) => repositories.imageUploads,
    file: {
      key: (uploadId) => objectKeys.upload(uploadId, 'file'),
      contentType: (upload) => upload.contentType,
      byteSize: (upload) => upload.byteSize,
      noun: 'image',
      notArrived: notArrived('image'),
    },
    mask: {
      key: (uploadId) => objectKeys.upload(uploadId, 'mask'),
      contentType: (upload) => upload.maskContentType,
      byteSize: (upload) => upload.maskByteSize,
      noun: 'mask',
      notArrived: notArrived('mask'),
    },
    maxBytes: settings.maxBytes,
    urlExpirySeconds: settings.urlExpirySeconds,
    read: { mode: 'bounded', tooLargeCode: ErrorCode.IMAGE_TOO_LARGE },
    tooLarge: (byteSize, argument) => {
      const message = `${argument} is ${byteSize} bytes; at most ${settings.maxBytes} are accepted`;
      return new AppError(ErrorCode.IMAGE_TOO_LARGE, message, { argument, maxBytes: settings.maxBytes });
    },
    checkContentType: checkImageContentType,
  };
}

/**
 * Sample uploads through presigned PUT URLs: the bytes go from the client straight to S3
 * (`uploads/<uploadId>/file|mask`), never through GraphQL. Confirming checks what arrived,
 * copies it to its final key and creates the image; a refused upload leaves nothing behind.
 */
export class ImageUploadService {
  private readonly uploads: PresignedUploads<ImageUploadEntity>;

  constructor(
    db: Database,
    private readonly objectStore: ObjectStore,
    private readonly categories: CategoryService,
    private readonly ingest: ImageIngestService,
    settings: UploadSettings,
    private readonly logger: Logger,
  ) {
    this.uploads = new PresignedUploads(db, objectStore, imageUploadKind(settings), logger);
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
    const uploads = this.uploads;
    const rows = request.files.map((file, index): NewPendingUpload<ImageUploadEntity> => {
      const argument = `files[${index}]`;
      const sha256 = uploads.checkSha256(file.sha256, `${argument}.sha256`);
      const withMask = file.withMask ?? false;
      if (withMask && !maskRequired) {
        throw badInput(`${argument}: only defective TEST images have a ground-truth mask`, {
          argument: `${argument}.withMask`,
        });
      }
      if (!withMask && maskRequired) {
        const message = `${argument}: a defective TEST image needs its ground-truth mask (withMask: true)`;
        throw new AppError(ErrorCode.MASK_MISSING, message, { argument: `${argument}.withMask` });
      }
      const maskByteSize = file.maskByteSize ?? null;
      return {
        categoryId: category.id,
        split: request.split,
        defectType,
        filename: displayFilename(file.filename, index),
        contentType: uploads.checkContentType(file.contentType, `${argument}.contentType`),
        byteSize: uploads.checkByteSize(file.byteSize, `${argument}.byteSize`),
        sha256,
        withMask,
        maskContentType: withMask
          ? uploads.checkContentType(file.maskContentType ?? 'image/png', `${argument}.maskContentType`)
          : null,
        maskByteSize:
          withMask && maskByteSize !== null ? uploads.checkByteSize(maskByteSize, `${argument}.maskByteSize`) : null,
        requestedBy: principal.apiKeyId,
      };
    });
    return uploads.openAll(rows);
  }

  /** Validates each upload on its own: one refused upload does not stop the others. */
  async confirm(uploadIds: readonly string[], principal: Principal): Promise<UploadConfirmation[]> {
    if (uploadIds.length === 0 || uploadIds.length > MAX_FILES_PER_UPLOAD_REQUEST) {
      throw badInput(`uploadIds must hold 1 to ${MAX_FILES_PER_UPLOAD_REQUEST} ids`, { argument: 'uploadIds' });
    }
    const distinct = [...new Set(uploadIds)];
    const outcomes = await mapConcurrently(distinct, CONFIRM_CONCURRENCY, (uploadId) =>
      this.confirmOne(uploadId, principal),
    );
    // The upload objects of confirmed images, removed in one request for the whole batch.
    await this.uploads.removeConsumed(outcomes.flatMap((outcome) => (outcome.image ? [outcome.uploadId] : [])));
    const byId = new Map(distinct.map((uploadId, index) => [uploadId, outcomes[index] as UploadConfirmation]));
    return uploadIds.map((uploadId) => byId.get(uploadId) as UploadConfirmation);
  }

  private async confirmOne(uploadId: string, principal: Principal): Promise<UploadConfirmation> {
    const upload = await this.uploads.findOwned(uploadId, principal);
    if (!upload) {
      return {
        uploadId,
        image: null,
        code: ErrorCode.NOT_FOUND,
        message: `upload ${uploadId} was not found (or was already confirmed)`,
      };
    }
    try {
      const image = await this.validateAndStore(upload);
      return { uploadId, image, code: null, message: null };
    } catch (error) {
      if (!(error instanceof UploadRefusal)) {
        // Not the upload's fault (database or S3 trouble): it stays pending, to be confirmed again.
        this.logger.error({ err: error, uploadId }, 'confirming an upload failed');
        const message = 'the upload could not be stored now; confirm it again';
        return { uploadId, image: null, code: ErrorCode.INTERNAL_SERVER_ERROR, message };
      }
      // Those of `receive` are discarded already (unless kept); the ingest unit's are discarded here.
      if (error instanceof IngestRefusal && !error.keepsUpload) await this.uploads.discard([upload.id]);
      return { uploadId, image: null, code: error.code, message: error.message };
    }
  }

  /**
   * What arrived, checked by `receive` (expiry, presence, sizes, SHA-256), then given to the
   * ingest unit (duplicate, image, mask), which copies the objects to their final keys.
   */
  private async validateAndStore(upload: ImageUploadEntity): Promise<ImageEntity> {
    const { bytes, maskBytes, sha256 } = await this.uploads.receive(upload);
    const outcome = await this.ingest.ingest({
      categoryId: upload.categoryId,
      split: upload.split,
      defectType: upload.defectType,
      bytes,
      sha256: sha256 ?? sha256Hex(bytes),
      readMask: maskBytes ? () => Promise.resolve(maskBytes) : null,
      originalFilename: upload.filename,
      uploadedBy: upload.requestedBy,
      importJobId: null,
      // The bytes are in the bucket already: copied to their final keys there.
      store: (part, key, _bytes, contentType) =>
        this.objectStore.copy(this.uploads.objectKey(upload.id, part === 'image' ? 'file' : 'mask'), key, contentType),
      beforeInsert: async (tx) => {
        // Claiming the upload row first makes a second, concurrent confirm of it find nothing.
        if (!(await this.uploads.claim(tx, [upload.id]))) {
          throw new UploadRefusal(ErrorCode.NOT_FOUND, 'the upload was confirmed or removed meanwhile', true);
        }
      },
    });
    switch (outcome.kind) {
      case 'inserted':
        return outcome.image;
      case 'duplicate':
        throw new IngestRefusal(
          ErrorCode.DUPLICATE_IMAGE,
          `the category already holds this image (${outcome.existing.id})`,
        );
      case 'category-gone':
        throw new IngestRefusal(ErrorCode.NOT_FOUND, 'the category was deleted');
      case 'invalid':
        throw new IngestRefusal(outcome.code, outcome.message);
    }
  }
}
