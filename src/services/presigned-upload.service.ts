import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { hasRole, Role, type Principal } from '../auth/principal';
import type { Database, Repositories } from '../db/repositories';
import { AppError, badInput, ErrorCode, type ErrorCodeValue } from '../errors';
import { ACCEPTED_CONTENT_TYPES, IMAGE_CONTENT_TYPES } from '../images/image-bytes';
import type { ObjectStore } from '../storage/object-store';
import { isUuid, SHA256_HEX } from '../utils/ids';

export interface HttpHeader {
  name: string;
  value: string;
}

/** Where and how a client PUTs an upload's objects. */
export interface UploadTargetInfo {
  uploadId: string;
  url: string;
  maskUrl: string | null;
  /** Headers the PUT must carry (their values are part of the signature). */
  headers: HttpHeader[];
  maskHeaders: HttpHeader[] | null;
  expiresAt: Date;
}

/** What every pending upload row has. */
export interface PendingUpload {
  id: string;
  requestedBy: string;
  expiresAt: Date;
  /** Declared size of the file part. */
  byteSize: number;
  /** Declared SHA-256 of the file part, checked when given. */
  sha256: string | null;
}

/** A pending upload before its row exists: the unit gives it its id and expiry. */
export type NewPendingUpload<Row extends PendingUpload> = Omit<Row, 'id' | 'expiresAt' | 'createdAt'>;

/**
 * The table of one kind of pending upload. The upload repositories of src/db/repositories have
 * these methods; a kind picks its own out of a Repositories, in or outside a transaction.
 */
export interface PendingUploadRepository<Row extends PendingUpload> {
  insert(uploads: ReadonlyArray<Omit<Row, 'createdAt'>>): Promise<void>;
  findById(id: string): Promise<Row | null>;
  /** Removes the rows of uploads being consumed; returns the ids that were still there. */
  claim(ids: readonly string[]): Promise<string[]>;
  delete(ids: readonly string[]): Promise<void>;
  /** Uploads past their expiry, at most `limit`. */
  listExpired(limit: number): Promise<Row[]>;
}

/** One object of an upload, PUT to its own presigned URL. */
export interface UploadPart<Row extends PendingUpload> {
  key(uploadId: string): string;
  /** The Content-Type its PUT must carry; null when this upload has no such part. */
  contentType(upload: Row): string | null;
  /** The size its PUT must carry, when declared. */
  byteSize(upload: Row): number | null;
  /** What it is called in refusals: "the <noun> received is … bytes". */
  noun: string;
  /** The UPLOAD_INCOMPLETE message while it has not arrived. */
  notArrived: string;
}

/** How one kind of upload behaves. */
export interface UploadKind<Row extends PendingUpload> {
  /** For logs: "model upload". */
  label: string;
  repository(repositories: Repositories): PendingUploadRepository<Row>;
  file: UploadPart<Row>;
  /** An optional second object (a dataset image's ground-truth mask). */
  mask?: UploadPart<Row>;
  /** Largest object accepted. */
  maxBytes: number;
  urlExpirySeconds: number;
  /**
   * How arrived objects are read. `whole`: a HEAD first, whose size must be the declared one
   * (CHECKSUM_MISMATCH otherwise), then the whole object. `bounded`: one ranged GET of at most
   * maxBytes + 1 bytes, so an oversized object is recognised (refused with `tooLargeCode`)
   * without being downloaded.
   */
  read: { mode: 'whole' } | { mode: 'bounded'; tooLargeCode: ErrorCodeValue };
  /** The refusal of a request declaring more than maxBytes. */
  tooLarge(byteSize: number, argument: string): AppError;
  /** Checks and normalises a declared Content-Type; absent for kinds with a fixed one. */
  checkContentType?(contentType: string, argument: string): string;
}

/** The bytes that arrived, checked against the declared size and SHA-256. */
export interface ReceivedUpload {
  bytes: Buffer;
  /** The mask part's bytes; null when the upload has none. */
  maskBytes: Buffer | null;
  /** SHA-256 of `bytes`, when one was declared (and so computed); it matched. */
  sha256: string | null;
}

/** An upload refused; unless `keepsUpload`, its row and objects are already removed. */
export class UploadRefusal extends AppError {
  constructor(
    code: ErrorCodeValue,
    message: string,
    readonly keepsUpload = false,
  ) {
    super(code, message);
  }
}

/** Content-Type rule of image uploads: PNG, JPEG, BMP or TIFF (INVALID_IMAGE otherwise). */
export function checkImageContentType(contentType: string, argument: string): string {
  const normalized = contentType.trim().toLowerCase();
  if (!ACCEPTED_CONTENT_TYPES.has(normalized)) {
    const accepted = Object.values(IMAGE_CONTENT_TYPES).join(', ');
    throw new AppError(ErrorCode.INVALID_IMAGE, `${argument} must be one of ${accepted}; got "${contentType}"`, {
      argument,
    });
  }
  return normalized;
}

const SWEEP_BATCH = 1000;

/**
 * The lifecycle of presigned uploads of one kind: a row that expires, presigned PUT URLs for
 * its objects (the bytes go from the client straight to S3, never through GraphQL), a check of
 * what arrived (size, SHA-256), the row claimed in the transaction that consumes it, refusals
 * that remove the upload, and a sweep of expired ones. Objects are removed before rows, so a
 * failure leaves the row for the sweep to retry.
 */
export class PresignedUploads<Row extends PendingUpload> {
  private readonly parts: ReadonlyArray<UploadPart<Row>>;

  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly kind: UploadKind<Row>,
    private readonly logger: Logger,
  ) {
    this.parts = kind.mask ? [kind.file, kind.mask] : [kind.file];
  }

  checkContentType(contentType: string, argument = 'contentType'): string {
    if (!this.kind.checkContentType) throw new Error(`${this.kind.label}s have a fixed content type`);
    return this.kind.checkContentType(contentType, argument);
  }

  checkByteSize(byteSize: number, argument = 'byteSize'): number {
    if (!Number.isInteger(byteSize) || byteSize < 1)
      throw badInput(`${argument} must be a positive number of bytes`, { argument });
    if (byteSize > this.kind.maxBytes) throw this.kind.tooLarge(byteSize, argument);
    return byteSize;
  }

  /** A declared SHA-256, lowercased; null when none is declared. */
  checkSha256(sha256: string, argument?: string): string;
  checkSha256(sha256: string | null | undefined, argument?: string): string | null;
  checkSha256(sha256: string | null | undefined, argument = 'sha256'): string | null {
    if (sha256 === null || sha256 === undefined) return null;
    const normalized = sha256.trim().toLowerCase();
    if (!SHA256_HEX.test(normalized)) throw badInput(`${argument} must be 64 hex digits`, { argument });
    return normalized;
  }

  /** Stores the pending upload (with its id and expiry) and presigns its PUT URLs. */
  async open(upload: NewPendingUpload<Row>): Promise<UploadTargetInfo> {
    const [target] = await this.openAll([upload]);
    return target as UploadTargetInfo;
  }

  /** Several at once, expiring together, in one insert. */
  async openAll(uploads: ReadonlyArray<NewPendingUpload<Row>>): Promise<UploadTargetInfo[]> {
    const expiresInSeconds = this.kind.urlExpirySeconds;
    const expiresAt = new Date(Date.now() + expiresInSeconds * 1000);
    const rows = uploads.map((upload) => ({ ...upload, id: randomUUID(), expiresAt }) as unknown as Row);
    // The insert fills in what the database generates (createdAt), so the rows are whole after it.
    await this.kind.repository(this.db).insert(rows);
    const presign = async (part: UploadPart<Row>, row: Row): Promise<{ url: string; headers: HttpHeader[] } | null> => {
      const contentType = part.contentType(row);
      if (contentType === null) return null;
      const contentLength = part.byteSize(row) ?? undefined;
      const url = await this.objectStore.presignPut(part.key(row.id), { contentType, contentLength, expiresInSeconds });
      return { url, headers: [{ name: 'Content-Type', value: contentType }] };
    };
    return Promise.all(
      rows.map(async (row) => {
        const [file, mask] = await Promise.all([
          presign(this.kind.file, row),
          this.kind.mask ? presign(this.kind.mask, row) : null,
        ]);
        if (!file) throw new Error(`a ${this.kind.label} without a file part`);
        return {
          uploadId: row.id,
          url: file.url,
          headers: file.headers,
          maskUrl: mask?.url ?? null,
          maskHeaders: mask?.headers ?? null,
          expiresAt,
        };
      }),
    );
  }

  /** The pending upload, if it exists and is the caller's (or the caller is an admin). */
  async findOwned(uploadId: string, principal: Principal): Promise<Row | null> {
    const upload = isUuid(uploadId) ? await this.kind.repository(this.db).findById(uploadId.toLowerCase()) : null;
    if (!upload || (upload.requestedBy !== principal.apiKeyId && !hasRole(principal, Role.ADMIN))) return null;
    return upload;
  }

  /**
   * What arrived for the upload, checked: not expired (UPLOAD_EXPIRED), every part there
   * (UPLOAD_INCOMPLETE, the upload kept to be used again), sizes (CHECKSUM_MISMATCH, or too large
   * for bounded reads) and the declared SHA-256 (CHECKSUM_MISMATCH). Throws UploadRefusal.
   */
  async receive(upload: Row): Promise<ReceivedUpload> {
    try {
      if (upload.expiresAt.getTime() <= Date.now()) {
        throw new UploadRefusal(ErrorCode.UPLOAD_EXPIRED, 'the upload URL has expired; request a new one');
      }
      const parts = this.parts.filter((part) => part.contentType(upload) !== null);
      const read = this.kind.read;
      const [bytes, maskBytes] =
        read.mode === 'whole'
          ? await this.readWhole(upload, parts)
          : await this.readBounded(upload, parts, read.tooLargeCode);
      let sha256: string | null = null;
      if (upload.sha256 !== null) {
        sha256 = createHash('sha256')
          .update(bytes as Buffer)
          .digest('hex');
        if (sha256 !== upload.sha256) {
          const message = `the bytes received have SHA-256 ${sha256}, not the declared ${upload.sha256}`;
          throw new UploadRefusal(ErrorCode.CHECKSUM_MISMATCH, message);
        }
      }
      return { bytes: bytes as Buffer, maskBytes: maskBytes ?? null, sha256 };
    } catch (error) {
      if (error instanceof UploadRefusal && !error.keepsUpload) await this.discard([upload.id]);
      throw error;
    }
  }

  private async readWhole(upload: Row, parts: ReadonlyArray<UploadPart<Row>>): Promise<Buffer[]> {
    const arrived = await Promise.all(parts.map((part) => this.objectStore.head(part.key(upload.id))));
    parts.forEach((part, index) => {
      if (!arrived[index]) throw new UploadRefusal(ErrorCode.UPLOAD_INCOMPLETE, part.notArrived, true);
    });
    parts.forEach((part, index) => {
      const size = (arrived[index] as { size: number }).size;
      const declared = part.byteSize(upload);
      if (size > this.kind.maxBytes || (declared !== null && size !== declared)) {
        const expected = declared ?? `at most ${this.kind.maxBytes}`;
        throw new UploadRefusal(
          ErrorCode.CHECKSUM_MISMATCH,
          `the ${part.noun} received is ${size} bytes, but ${expected} were declared`,
        );
      }
    });
    return Promise.all(parts.map((part) => this.objectStore.get(part.key(upload.id))));
  }

  private async readBounded(
    upload: Row,
    parts: ReadonlyArray<UploadPart<Row>>,
    tooLargeCode: ErrorCodeValue,
  ): Promise<Buffer[]> {
    const read = await Promise.all(parts.map((part) => this.readAtMost(part.key(upload.id), this.kind.maxBytes + 1)));
    parts.forEach((part, index) => {
      if (!read[index]) throw new UploadRefusal(ErrorCode.UPLOAD_INCOMPLETE, part.notArrived, true);
    });
    parts.forEach((part, index) => {
      const size = (read[index] as Buffer).length;
      const declared = part.byteSize(upload);
      if (size > this.kind.maxBytes) {
        throw new UploadRefusal(
          tooLargeCode,
          `the ${part.noun} received is larger than the ${this.kind.maxBytes} bytes accepted`,
        );
      }
      if (declared !== null && size !== declared) {
        throw new UploadRefusal(
          ErrorCode.CHECKSUM_MISMATCH,
          `the ${part.noun} received is ${size} bytes, but ${declared} were declared`,
        );
      }
    });
    return read as Buffer[];
  }

  /** The first `maxBytes` of an object, or null if it does not exist. */
  private async readAtMost(key: string, maxBytes: number): Promise<Buffer | null> {
    try {
      return await this.objectStore.getRange(key, maxBytes);
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw error;
    }
  }

  /**
   * In the transaction that consumes the uploads: removes their rows, so a concurrent use of
   * them finds nothing. False if any was gone already (consumed or removed meanwhile).
   */
  async claim(tx: Repositories, uploadIds: readonly string[]): Promise<boolean> {
    const claimed = await this.kind.repository(tx).claim(uploadIds);
    return claimed.length === new Set(uploadIds).size;
  }

  /** After the consuming transaction commits: the upload objects are no longer needed (a failure to remove them is logged). */
  async removeConsumed(uploadIds: readonly string[]): Promise<void> {
    if (uploadIds.length === 0) return;
    await this.objectStore
      .delete(this.objectKeysOf(uploadIds))
      .catch((error: unknown) =>
        this.logger.warn({ err: error, uploadIds }, `could not remove consumed ${this.kind.label}s`),
      );
  }

  /** Removes pending uploads: objects first, so a failure leaves the rows for the sweep to retry. */
  async discard(uploadIds: readonly string[]): Promise<void> {
    await this.objectStore.delete(this.objectKeysOf(uploadIds));
    await this.kind.repository(this.db).delete(uploadIds);
  }

  /** Removes uploads past their expiry (a batch of them); returns how many. */
  async sweepExpired(): Promise<number> {
    const expired = await this.kind.repository(this.db).listExpired(SWEEP_BATCH);
    if (expired.length === 0) return 0;
    await this.discard(expired.map((upload) => upload.id));
    return expired.length;
  }

  /** The object key of an upload's part. */
  objectKey(uploadId: string, part: 'file' | 'mask' = 'file'): string {
    const uploadPart = part === 'file' ? this.kind.file : this.kind.mask;
    if (!uploadPart) throw new Error(`${this.kind.label}s have no ${part} part`);
    return uploadPart.key(uploadId);
  }

  private objectKeysOf(uploadIds: readonly string[]): string[] {
    return uploadIds.flatMap((id) => this.parts.map((part) => part.key(id)));
  }
}
