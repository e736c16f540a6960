import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import S3rver from '@20minutes/s3rver';

export interface EmbeddedS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

/** Starts s3rver (the maintained @20minutes fork), an S3-compatible HTTP server, inside this process. */
export async function startEmbeddedS3(options: {
  dataDir: string;
  port: number;
  buckets: string[];
}): Promise<EmbeddedS3> {
  const directory = path.resolve(options.dataDir);
  await mkdir(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port,
    directory,
    silent: true,
    // Buckets are addressed by path (forcePathStyle); 127.0.0.1 has no virtual hosts.
    vhostBuckets: false,
    // Its SigV4 check disagrees with the current AWS SDK on bucket-level requests (HeadBucket,
    // ListObjectsV2, DeleteObjects answer 403 SignatureDoesNotMatch). It listens on 127.0.0.1 and
    // accepts one well-known key pair, so the check protects nothing here.
    allowMismatchedSignatures: true,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    // s3rver accepts the well-known S3RVER credentials only.
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    stop: () => server.close(),
  };
}
