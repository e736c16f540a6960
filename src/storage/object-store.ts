import {
  CopyObjectCommand,
  CreateBucketCommand,
  PutBucketCorsCommand,
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
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';

export interface ObjectStoreOptions {
  endpoint?: string;
  /** Endpoint that clients outside the service's network use in presigned URLs. */
  publicEndpoint?: string;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  defaultUrlExpirySeconds: number;
  /**
   * Browser origins allowed to GET and PUT presigned URLs (the console uploads straight to the
   * bucket); set on the bucket by ensureBucket. Unset: the bucket's CORS rules are left alone.
   */
  corsAllowedOrigins?: string[];
}

export interface ObjectInfo {
  key: string;
  size: number;
  contentType?: string;
  lastModified?: Date;
}

const DELETE_BATCH = 1000;
/** The key whose SDK-presigned URL teaches {@link ObjectStore.presignGet} the bucket's base URL. */
const PRESIGN_PROBE_KEY = 'presign-probe';

type PresignableRequest = Parameters<S3RequestPresigner['presign']>[0];

/** Where the bucket's objects live and how their URLs are signed, as the SDK resolved them. */
interface GetUrlTemplate {
  protocol: string;
  hostname: string;
  port: number | undefined;
  /** Path up to the key: `/<bucket>/` (path style) or `/` (virtual-hosted). */
  pathPrefix: string;
  /** Query parameters the SDK adds to every presigned GET besides the signature (e.g. checksum mode). */
  query: Record<string, string>;
  presigner: S3RequestPresigner;
}

/** S3's URI encoding (RFC 3986 unreserved characters kept), as the SDK applies it to keys and queries. */
function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof NotFound ||
    (error instanceof S3ServiceException && (error.$metadata.httpStatusCode === 404 || error.name === 'NoSuchKey'))
  );
}

/** `scheme://host[:port]/path?query`, the query sorted and escaped as the SDK's formatUrl does. */
function formatUrl(request: PresignableRequest): string {
  const host = request.port === undefined ? request.hostname : `${request.hostname}:${request.port}`;
  const query = Object.keys(request.query ?? {})
    .sort()
    .map((name) => {
      const value = request.query?.[name];
      if (Array.isArray(value)) return value.map((item) => `${escapeUri(name)}=${escapeUri(item)}`).join('&');
      return value === null || value === undefined ? escapeUri(name) : `${escapeUri(name)}=${escapeUri(value)}`;
    })
    .join('&');
  return `${request.protocol}//${host}${request.path}${query ? `?${query}` : ''}`;
}

/** The service's only door to S3: one bucket, keys from storage/object-keys.ts. */
export class ObjectStore {
  private readonly client: S3Client;
  private readonly presignClient: S3Client;
  readonly bucket: string;
  readonly defaultUrlExpirySeconds: number;
  private readonly corsAllowedOrigins: string[] | undefined;
  /** Resolved on the first presignGet. */
  private getUrlTemplate: Promise<GetUrlTemplate> | undefined;

  constructor(options: ObjectStoreOptions) {
    // cacheMiddleware: build each command's middleware stack once per client, not per request
    // (1.27–1.35× less client CPU per 100 kB PUT: npm run bench:object-store).
    const base = {
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: options.credentials,
      cacheMiddleware: true,
    };
    this.client = new S3Client({ ...base, endpoint: options.endpoint });
    this.presignClient = options.publicEndpoint
      ? new S3Client({ ...base, endpoint: options.publicEndpoint })
      : this.client;
    this.bucket = options.bucket;
    this.defaultUrlExpirySeconds = options.defaultUrlExpirySeconds;
    this.corsAllowedOrigins = options.corsAllowedOrigins;
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
    if (this.corsAllowedOrigins?.length)
      await this.client.send(
        new PutBucketCorsCommand({
          Bucket: this.bucket,
          CORSConfiguration: {
            CORSRules: [
              {
                AllowedOrigins: this.corsAllowedOrigins,
                AllowedMethods: ['GET', 'HEAD', 'PUT'],
                AllowedHeaders: ['*'],
                ExposeHeaders: ['ETag'],
                MaxAgeSeconds: 3600,
              },
            ],
          },
        }),
      );
  }

  /** Readiness probe: the bucket answers. */
  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async put(key: string, body: Buffer | Uint8Array, contentType: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
        ContentLength: body.byteLength,
      }),
    );
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

  /** The object's bytes, or null when there is no such object. */
  async find(key: string): Promise<Buffer | null> {
    try {
      return await this.get(key);
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Reads at most `maxBytes` (for type sniffing) without downloading the whole object. */
  async getRange(key: string, maxBytes: number): Promise<Buffer> {
    const response = await this.client.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${maxBytes - 1}` }),
    );
    if (!response.Body) throw new Error(`object ${key} has no body`);
    return Buffer.from(await response.Body.transformToByteArray());
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        size: response.ContentLength ?? 0,
        contentType: response.ContentType,
        lastModified: response.LastModified,
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const response = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
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
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: continuationToken }),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key) yield { key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  /**
   * A presigned GET of `key`, signed here rather than through `getSignedUrl`, which resolves a
   * whole command pipeline per URL: 6–8× less time per URL (npm run bench:object-store), and
   * every inspection shown needs three URLs (a page of 50, 150). The bucket's base URL, the signing region and the
   * extra query parameters come from one SDK-presigned URL of a probe key, so endpoint rules
   * stay the SDK's; the URLs are the SDK's byte for byte (test/foundation/object-store.test.ts).
   */
  async presignGet(
    key: string,
    options: { expiresInSeconds?: number; contentType?: string; signingDate?: Date } = {},
  ): Promise<string> {
    const template = await (this.getUrlTemplate ??= this.resolveGetUrlTemplate().catch((error: unknown) => {
      this.getUrlTemplate = undefined;
      throw error;
    }));
    const query: Record<string, string> = { ...template.query };
    if (options.contentType !== undefined) query['response-content-type'] = options.contentType;
    const request: PresignableRequest = {
      method: 'GET',
      protocol: template.protocol,
      hostname: template.hostname,
      port: template.port,
      path: template.pathPrefix + key.split('/').map(escapeUri).join('/'),
      query,
      headers: { host: template.port === undefined ? template.hostname : `${template.hostname}:${template.port}` },
    };
    const signed = await template.presigner.presign(request, {
      expiresIn: options.expiresInSeconds ?? this.defaultUrlExpirySeconds,
      signingDate: options.signingDate,
    });
    return formatUrl(signed);
  }

  private async resolveGetUrlTemplate(): Promise<GetUrlTemplate> {
    const probe = new URL(await this.presignGetWithSdk(PRESIGN_PROBE_KEY));
    if (!probe.pathname.endsWith(`/${PRESIGN_PROBE_KEY}`))
      throw new Error(`cannot derive the bucket URL from the presigned URL ${probe.origin}${probe.pathname}`);
    // X-Amz-Credential is <access key>/<date>/<region>/<service>/aws4_request.
    const [, , region, service] = (probe.searchParams.get('X-Amz-Credential') ?? '').split('/');
    if (!region || !service) throw new Error('the SDK-presigned probe URL has no X-Amz-Credential scope');
    const query: Record<string, string> = {};
    for (const [name, value] of probe.searchParams) if (!name.startsWith('X-Amz-')) query[name] = value;
    return {
      protocol: probe.protocol,
      hostname: probe.hostname,
      port: probe.port === '' ? undefined : Number(probe.port),
      pathPrefix: probe.pathname.slice(0, -PRESIGN_PROBE_KEY.length),
      query,
      presigner: new S3RequestPresigner({
        ...this.presignClient.config,
        signingName: service,
        region: async () => region,
      }),
    };
  }

  /** A presigned GET as the SDK builds it (test/foundation/object-store.test.ts compares the two). */
  async presignGetWithSdk(
    key: string,
    options: { expiresInSeconds?: number; contentType?: string; signingDate?: Date } = {},
  ): Promise<string> {
    return getSignedUrl(
      this.presignClient,
      new GetObjectCommand({ Bucket: this.bucket, Key: key, ResponseContentType: options.contentType }),
      { expiresIn: options.expiresInSeconds ?? this.defaultUrlExpirySeconds, signingDate: options.signingDate },
    );
  }

  /**
   * A URL the client PUTs the bytes to. Content type and (when given) length are signed, so
   * a signature-checking server (S3, MinIO) refuses a body of another size or type.
   */
  async presignPut(
    key: string,
    options: { contentType: string; contentLength?: number; expiresInSeconds?: number },
  ): Promise<string> {
    const signableHeaders = new Set(
      options.contentLength === undefined ? ['content-type'] : ['content-type', 'content-length'],
    );
    return getSignedUrl(
      this.presignClient,
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ContentType: options.contentType,
        ContentLength: options.contentLength,
      }),
      { expiresIn: options.expiresInSeconds ?? this.defaultUrlExpirySeconds, signableHeaders },
    );
  }

  destroy(): void {
    this.client.destroy();
    if (this.presignClient !== this.client) this.presignClient.destroy();
  }
}
