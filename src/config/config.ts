import path from 'node:path';
import { z } from 'zod';

const booleanFlag = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1');

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

/**
 * Every setting of the service, read from environment variables only.
 * Each variable is documented in README.md ("Configuration").
 */
export const configSchema = z
  .object({
    NODE_ENV: z.enum(['production', 'development', 'test']).default('production'),
    HOST: z.string().min(1).default('0.0.0.0'),
    PORT: port.default(4000),
    DATA_DIR: z.string().min(1).default('./.data'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    DATABASE_URL: z.string().url().optional(),
    DATABASE_POOL_SIZE: positiveInt.default(10),
    EMBEDDED_POSTGRES_PORT: port.default(54329),

    S3_ENDPOINT: z.string().url().optional(),
    S3_PUBLIC_ENDPOINT: z.string().url().optional(),
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_BUCKET: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)')
      .default('inspection'),
    S3_FORCE_PATH_STYLE: booleanFlag.default('true'),
    AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
    AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    EMBEDDED_S3_PORT: port.default(4569),
    PRESIGNED_URL_EXPIRY_SECONDS: z.coerce.number().int().min(60).max(7 * 24 * 3600).default(900),

    ADMIN_API_KEY: z.string().min(24, 'must be at least 24 characters').optional(),
    GRAPHQL_MAX_DEPTH: positiveInt.default(12),
    GRAPHQL_MAX_COMPLEXITY: positiveInt.default(2000),
    SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),
  })
  .superRefine((env, ctx) => {
    if (env.AWS_ACCESS_KEY_ID && !env.AWS_SECRET_ACCESS_KEY) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['AWS_SECRET_ACCESS_KEY'], message: 'is required when AWS_ACCESS_KEY_ID is set' });
    }
  });

export type Env = z.infer<typeof configSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  host: string;
  port: number;
  dataDir: string;
  logLevel: Env['LOG_LEVEL'];
  database: { url?: string; poolSize: number; embeddedPort: number };
  s3: {
    /** Unset: no endpoint and no credentials given, so an embedded s3rver is started. */
    embedded: boolean;
    endpoint?: string;
    publicEndpoint?: string;
    region: string;
    bucket: string;
    forcePathStyle: boolean;
    credentials?: { accessKeyId: string; secretAccessKey: string };
    embeddedPort: number;
    presignedUrlExpirySeconds: number;
  };
  adminApiKey?: string;
  graphql: { maxDepth: number; maxComplexity: number; exposeStackTraces: boolean };
  shutdownTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = issue.path.join('.');
        const given = source[variable];
        return `${variable}: ${issue.message}${given === undefined ? '' : ` (got "${given}")`}`;
      }),
    );
  }
  const env = parsed.data;
  const s3Embedded = !env.S3_ENDPOINT && !env.AWS_ACCESS_KEY_ID;
  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    dataDir: path.resolve(env.DATA_DIR),
    logLevel: env.LOG_LEVEL,
    database: { url: env.DATABASE_URL, poolSize: env.DATABASE_POOL_SIZE, embeddedPort: env.EMBEDDED_POSTGRES_PORT },
    s3: {
      embedded: s3Embedded,
      endpoint: env.S3_ENDPOINT,
      publicEndpoint: env.S3_PUBLIC_ENDPOINT,
      region: env.S3_REGION,
      bucket: env.S3_BUCKET,
      forcePathStyle: env.S3_FORCE_PATH_STYLE,
      credentials:
        env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY }
          : undefined,
      embeddedPort: env.EMBEDDED_S3_PORT,
      presignedUrlExpirySeconds: env.PRESIGNED_URL_EXPIRY_SECONDS,
    },
    adminApiKey: env.ADMIN_API_KEY,
    graphql: { maxDepth: env.GRAPHQL_MAX_DEPTH, maxComplexity: env.GRAPHQL_MAX_COMPLEXITY, exposeStackTraces: env.NODE_ENV === 'development' },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
  };
}
