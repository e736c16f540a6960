// Minimal typing for the parts of @20minutes/s3rver 4.x (the maintained fork of s3rver) that the
// embedded object store uses.
declare module '@20minutes/s3rver' {
  import type { RequestListener } from 'node:http';
  import type { AddressInfo } from 'node:net';

  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: Array<{ name: string; configs?: Array<string | Buffer> }>;
  }

  class S3rver {
    constructor(options?: S3rverOptions);
    run(): Promise<AddressInfo>;
    /** Creates the buckets of `configureBuckets` (run() does it before listening). */
    configureBuckets(): Promise<unknown>;
    /** Koa's request handler, for an HTTP server of one's own. */
    callback(): RequestListener;
    close(): Promise<void>;
  }

  export = S3rver;
}
