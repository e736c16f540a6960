import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NotFound,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

export interface ObjectStoreOptions {
  endpoint?: string;
  /** Endpoint that clients outside the service's network use in presigned URLs. */
  publicEndpoint?: string;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  defaultUrlExpirySeconds: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  contentType?: string;
  lastModified?: Date;
}

const DELETE_BATCH = 1000;

function isNotFound(error: unknown): boolean {
  return error instanceof NotFound || (error instanceof S3ServiceException && (error.$metadata.httpStatusCode === 404 || error.name === 'NoSuchKey'));
}

/** The service's only door to S3: one bucket, keys from storage/object-keys.ts. */
export class ObjectStore {
  private readonly client: S3Client;
  private readonly presignClient: S3Client;
  readonly bucket: string;
  readonly defaultUrlExpirySeconds: number;

  constructor(options: ObjectStoreOptions) {
    const base = { region: options.region, forcePathStyle: options.forcePathStyle, credentials: options.credentials };
    this.client = new S3Client({ ...base, endpoint: options.endpoint });
    this.presignClient = options.publicEndpoint ? new S3Client({ ...base, endpoint: options.publicEndpoint }) : this.client;
    this.bucket = options.bucket;
    this.defaultUrlExpirySeconds = options.defaultUrlExpirySeconds;
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  /** Readiness probe: the bucket answers. */
  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async put(key: string, body: Buffer | Uint8Array, contentType: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.byteLength }));
  }

  /** Server-side copy within the bucket; the copy gets `contentType`, whatever the source had. */
  async copy(sourceKey: string, targetKey: string, contentType: string): Promise<void> {
    await this.client.send(
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: targetKey,
        CopySource: `${this.bucket}/${sourceKey.split('/').map(encodeURIComponent).join('/')}`,
        ContentType: contentType,
        MetadataDirective: 'REPLACE',
      }),
    );
  }

  async get(key: string): Promise<Buffer> {
    const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if (!response.Body) throw new Error(`object ${key} has no body`);
    return Buffer.from(await response.Body.transformToByteArray());
  }

  /** Reads at most `maxBytes` (for type sniffing) without downloading the whole object. */
  async getRange(key: string, maxBytes: number): Promise<Buffer> {
    const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${maxBytes - 1}` }));
    if (!response.Body) throw new Error(`object ${key} has no body`);
    return Buffer.from(await response.Body.transformToByteArray());
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: response.ContentLength ?? 0, contentType: response.ContentType, lastModified: response.LastModified };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const response = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
      if (response.Errors?.length) {
        const first = response.Errors[0];
        throw new Error(`could not delete ${response.Errors.length} objects, e.g. ${first?.Key}: ${first?.Message}`);
      }
    }
  }

  async *list(prefix: string): AsyncGenerator<ObjectInfo> {
    let continuationToken: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: continuationToken }));
      for (const item of page.Contents ?? []) {
        if (item.Key) yield { key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  async presignGet(key: string, options: { expiresInSeconds?: number; contentType?: string } = {}): Promise<string> {
    return getSignedUrl(
      this.presignClient,
      new GetObjectCommand({ Bucket: this.bucket, Key: key, ResponseContentType: options.contentType }),
      { expiresIn: options.expiresInSeconds ?? this.defaultUrlExpirySeconds },
    );
  }

  /**
   * A URL the client PUTs the bytes to. Content type and (when given) length are signed, so
   * a signature-checking server (S3, MinIO) refuses a body of another size or type.
   */
  async presignPut(key: string, options: { contentType: string; contentLength?: number; expiresInSeconds?: number }): Promise<string> {
    const signableHeaders = new Set(options.contentLength === undefined ? ['content-type'] : ['content-type', 'content-length']);
    return getSignedUrl(
      this.presignClient,
      new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: options.contentType, ContentLength: options.contentLength }),
      { expiresIn: options.expiresInSeconds ?? this.defaultUrlExpirySeconds, signableHeaders },
    );
  }

  destroy(): void {
    this.client.destroy();
    if (this.presignClient !== this.client) this.presignClient.destroy();
  }
}
