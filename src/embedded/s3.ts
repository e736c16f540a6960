import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import S3rver from 's3rver';

export interface EmbeddedS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

/** Starts s3rver, an S3-compatible HTTP server, inside this process. */
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
