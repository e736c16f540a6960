import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import S3rver from '@20minutes/s3rver';
import { EmbeddedServerError, oneLine } from './errors';

export interface EmbeddedS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

/**
 * Starts s3rver (the maintained @20minutes fork), an S3-compatible HTTP server, inside this process.
 * Whatever fails at start ends in an EmbeddedServerError with a one-line message; a failure of the
 * listening server later goes to `onFailure`.
 */
export async function startEmbeddedS3(options: {
  dataDir: string;
  port: number;
  buckets: string[];
  onFailure?: (message: string) => void;
}): Promise<EmbeddedS3> {
  const directory = path.resolve(options.dataDir);
  let server: Server;
  try {
    await mkdir(directory, { recursive: true });
    const s3rver = new S3rver({
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
    await s3rver.configureBuckets();
    // The HTTP server is ours rather than s3rver's run(): that one turns a port already in use into
    // an unhandled 'error' event instead of a failed start.
    const listening = createServer(s3rver.callback());
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(options.port, '127.0.0.1', () => {
        listening.off('error', reject);
        resolve();
      });
    });
    server = listening;
  } catch (error) {
    throw new EmbeddedServerError(
      `embedded S3 could not start on 127.0.0.1:${options.port} with its data in ${directory}: ${oneLine(error)}`,
      { cause: error },
    );
  }
  server.on('error', (error) => options.onFailure?.(`the embedded S3 server failed: ${oneLine(error)}`));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    // s3rver accepts the well-known S3RVER credentials only.
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
