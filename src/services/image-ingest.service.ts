import { createHash, randomUUID } from 'node:crypto';
import type { ImageEntity, ImageSplit } from '../db/entities/image.entity';
import type { Database, Repositories } from '../db/repositories';
import type { InsertOutcome, NewImage } from '../db/repositories/image.repository';
import type { ErrorCodeValue } from '../errors';
import { IMAGE_CONTENT_TYPES, ImageValidationError, inspectImageBytes, validateMask } from '../images/image-bytes';
import type { ImageInfo, ImageLimits } from '../images/image-bytes';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import type { ImageService } from './image.service';

/** Lowercase hex SHA-256: what images are deduplicated by within their category. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export type ImagePart = 'image' | 'mask';

/** Why a file is not taken: an error code and a message for whoever sent it. */
export interface Refusal {
  code: ErrorCodeValue;
  message: string;
}

/** Puts one part under its final key (the bytes are there; a caller may copy from elsewhere instead). */
export type StoreObject = (part: ImagePart, key: string, bytes: Buffer, contentType: string) => Promise<void>;

export interface IngestRequest {
  categoryId: string;
  split: ImageSplit;
  defectType: string | null;
  bytes: Buffer;
  /** sha256Hex(bytes), computed by the caller, which may have checked it first (against a declared one). */
  sha256: string;
  /** Reads the ground-truth mask, once the image has passed its checks; a refusal if it cannot be read. null: no mask. */
  readMask: (() => Promise<Buffer | Refusal>) | null;
  originalFilename: string;
  uploadedBy: string | null;
  importJobId: string | null;
  /** Default: uploads the bytes. */
  store?: StoreObject;
  /** Runs in the insert's transaction, before the insert; what it does commits only with the image. */
  beforeInsert?: (tx: Repositories) => Promise<void>;
}

export type IngestOutcome =
  | { kind: 'inserted'; image: ImageEntity }
  /**
   * The category already holds these bytes. `foundAtInsert`: not when they were looked up, but when
   * the row was inserted (someone else stored them meanwhile; what this ingest stored is removed again).
   */
  | { kind: 'duplicate'; existing: ImageEntity; foundAtInsert: boolean }
  /** The category was deleted meanwhile; what this ingest stored is removed again. */
  | { kind: 'category-gone' }
  /** The image or its mask is refused (cannot be read or decoded, wrong size...); nothing was stored. */
  | { kind: 'invalid'; part: ImagePart; code: ErrorCodeValue; message: string };

type Invalid = Extract<IngestOutcome, { kind: 'invalid' }>;

interface CheckedFiles {
  info: ImageInfo;
  mask: { bytes: Buffer; contentType: string } | null;
}

/** Carries an insert that did not happen out of its transaction, rolling the transaction back. */
class NotInserted extends Error {
  constructor(readonly outcome: Exclude<InsertOutcome, { kind: 'inserted' }>) {
    super(`image not inserted: ${outcome.kind}`);
  }
}

function invalid(part: ImagePart, error: unknown): Invalid {
  if (error instanceof ImageValidationError) return { kind: 'invalid', part, code: error.code, message: error.message };
  throw error;
}

/**
 * Adds one image (and its mask) to a category, the same way for uploads, imports and the demo
 * seed: deduplicated by SHA-256 within the category, the bytes validated, the objects stored
 * under keys built from a new image id, then the row inserted. Objects are stored before the row
 * exists, so no row ever points at a missing object; when the row is not inserted (a duplicate
 * or a deleted category at insert time, or any error) the objects are removed again, and what
 * a failed removal leaves behind the orphan sweep removes.
 */
export class ImageIngestService {
  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly images: ImageService,
    private readonly settings: { imageLimits: ImageLimits },
  ) {}

  /** Errors other than the outcomes (database or object store trouble) are thrown, after the objects are removed. */
  async ingest(request: IngestRequest): Promise<IngestOutcome> {
    const existing = await this.db.images.findLiveBySha256(request.categoryId, request.sha256);
    if (existing) return { kind: 'duplicate', existing, foundAtInsert: false };
    const checked = await this.check(request);
    if ('kind' in checked) return checked;
    const { info, mask } = checked;

    const imageId = randomUUID();
    const imageKey = objectKeys.image(imageId);
    const maskKey = mask ? objectKeys.mask(imageId) : null;
    const storedKeys = maskKey ? [imageKey, maskKey] : [imageKey];
    const store = request.store ?? ((_part, key, bytes, contentType) => this.objectStore.put(key, bytes, contentType));
    try {
      await store('image', imageKey, request.bytes, info.contentType);
      if (mask && maskKey) await store('mask', maskKey, mask.bytes, mask.contentType);
      const outcome = await this.insert(
        {
          id: imageId,
          categoryId: request.categoryId,
          split: request.split,
          defectType: request.defectType,
          width: info.width,
          height: info.height,
          channels: info.channels,
          format: info.format,
          byteSize: request.bytes.length,
          sha256: request.sha256,
          objectKey: imageKey,
          maskObjectKey: maskKey,
          originalFilename: request.originalFilename,
          uploadedBy: request.uploadedBy,
          importJobId: request.importJobId,
        },
        request.beforeInsert,
      );
      if (outcome.kind === 'inserted') return outcome;
      await this.images.removeObjects(storedKeys);
      return outcome.kind === 'duplicate'
        ? { kind: 'duplicate', existing: outcome.existing, foundAtInsert: true }
        : outcome;
    } catch (error) {
      await this.images.removeObjects(storedKeys);
      throw error;
    }
  }

  /** The image's facts and the mask's content type; the mask is read only if the image passed. */
  private async check(request: IngestRequest): Promise<CheckedFiles | Invalid> {
    const limits = this.settings.imageLimits;
    let info: ImageInfo;
    try {
      info = await inspectImageBytes(request.bytes, limits);
    } catch (error) {
      return invalid('image', error);
    }
    if (!request.readMask) return { info, mask: null };
    const maskBytes = await request.readMask();
    if (!Buffer.isBuffer(maskBytes))
      return { kind: 'invalid', part: 'mask', code: maskBytes.code, message: maskBytes.message };
    try {
      const maskInfo = await validateMask(maskBytes, info.width, info.height, limits);
      return { info, mask: { bytes: maskBytes, contentType: IMAGE_CONTENT_TYPES[maskInfo.format] } };
    } catch (error) {
      return invalid('mask', error);
    }
  }

  /** Inserts the row in a transaction that `beforeInsert` takes part in, and that is rolled back unless the row is inserted. */
  private async insert(image: NewImage, beforeInsert: IngestRequest['beforeInsert']): Promise<InsertOutcome> {
    try {
      return await this.db.transaction(async (tx) => {
        await beforeInsert?.(tx);
        const outcome = await tx.images.insertUnlessDuplicate(image);
        if (outcome.kind !== 'inserted') throw new NotInserted(outcome);
        return outcome;
      });
    } catch (error) {
      if (error instanceof NotInserted) return error.outcome;
      throw error;
    }
  }
}
