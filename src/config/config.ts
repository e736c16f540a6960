import path from 'node:path';
import { z } from 'zod';

const booleanFlag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

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
    /** /healthz answers 503 once the database has been unreachable for longer than this. */
    LIVENESS_DATABASE_GRACE_SECONDS: z.coerce.number().int().min(0).default(60),

    S3_ENDPOINT: z.string().url().optional(),
    S3_PUBLIC_ENDPOINT: z.string().url().optional(),
    /** Where clients reach this service (inspection image URLs); unset: the Host of each request. */
    PUBLIC_URL: z.string().url().optional(),
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_BUCKET: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
        'must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)',
      )
      .default('inspection'),
    S3_FORCE_PATH_STYLE: booleanFlag.default('true'),
    AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
    AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    EMBEDDED_S3_PORT: port.default(4569),
    /** Comma-separated browser origins the bucket lets GET and PUT presigned URLs; unset: `*` when embedded, else the bucket's own rules. */
    S3_CORS_ALLOWED_ORIGINS: z
      .string()
      .optional()
      .transform((value) =>
        value
          ?.split(',')
          .map((origin) => origin.trim())
          .filter(Boolean),
      ),
    PRESIGNED_URL_EXPIRY_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .default(900),

    ADMIN_API_KEY: z.string().min(24, 'must be at least 24 characters').optional(),
    GRAPHQL_MAX_DEPTH: positiveInt.default(12),
    GRAPHQL_MAX_COMPLEXITY: positiveInt.default(2000),
    GRAPHQL_MAX_ALIASES: positiveInt.default(30),
    GRAPHQL_MAX_DIRECTIVES: positiveInt.default(20),
    GRAPHQL_MAX_TOKENS: positiveInt.default(5000),
    /** Who may query `__schema` / `__type`; unset: `on` in embedded mode (no DATABASE_URL), `key` otherwise. */
    GRAPHQL_INTROSPECTION: z.enum(['on', 'key', 'off']).optional(),
    /** The web console at / (dist/console, built by npm run build). */
    CONSOLE: booleanFlag.default('true'),
    /** GraphiQL at /graphiql. */
    GRAPHIQL: booleanFlag.default('true'),
    /** Largest websocket message accepted; a bigger one closes the socket (1009). */
    WS_MAX_PAYLOAD_BYTES: positiveInt.default(1024 * 1024),
    /** A websocket that has not sent a valid connection_init within this time is closed (4408). */
    WS_CONNECTION_INIT_TIMEOUT_MS: positiveInt.default(3000),
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: positiveInt.default(20),
    WS_MAX_CONNECTIONS_PER_KEY: positiveInt.default(20),
    SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),

    IMPORT_ROOTS: z
      .string()
      .default('')
      .transform((value) =>
        value
          .split(',')
          .map((entry) => entry.trim())
          .filter((entry) => entry.length > 0),
      )
      .refine(
        (roots) => roots.every((root) => path.isAbsolute(root)),
        'must be a comma-separated list of absolute directories',
      ),
    UPLOAD_MAX_BYTES: positiveInt.default(50 * 1024 * 1024),
    UPLOAD_URL_EXPIRY_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .default(900),
    IMAGE_MAX_PIXELS: positiveInt.default(50_000_000),
    ORPHAN_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(3600),
    JOB_WORKERS_IN_PROCESS: booleanFlag.default('true'),

    MODEL_MAX_BYTES: positiveInt.max(2 ** 31 - 1).default(1024 * 1024 * 1024),
    INSPECT_BATCH_MAX_IMAGES: positiveInt.max(1000).default(32),
    /** Images being inspected at once (read, decoded, queued or running); more get QUEUE_FULL before their image is read. */
    INSPECT_MAX_IN_FLIGHT: positiveInt.default(64),
    /** Largest input height/width a model may declare. */
    MODEL_MAX_INPUT_SIZE: positiveInt.default(4096),
    /** A model whose first (warm-up) run takes longer is refused with INVALID_MODEL. */
    MODEL_WARMUP_TIMEOUT_MS: positiveInt.default(60_000),
    /** The INT8 accuracy guard: the largest drop of image AUROC, pixel AUROC or AUPRO against fp32, in points (0.01). */
    MODEL_ACCURACY_TOLERANCE_POINTS: z.coerce.number().min(0).max(100).default(0.5),
    /** Dataset image bytes kept in memory for repeated inspections (src/images/dataset-image-cache.ts); 0: none. */
    DATASET_IMAGE_CACHE_MB: z.coerce.number().int().min(0).max(65_536).default(64),
    SEED_DEMO: booleanFlag.optional(),
    INFERENCE_WORKERS: positiveInt.max(64).default(1),
    /** Threads that decode and pre-process images (src/inference/preprocess-pool.ts); 0: the event loop. */
    PREPROCESS_WORKERS: z.coerce.number().int().min(0).max(64).default(1),
    INFERENCE_INTRA_OP_THREADS: z.coerce.number().int().min(0).max(256).default(0),
    INFERENCE_THREAD_NICE: z.coerce.number().int().min(0).max(19).default(10),
    INFERENCE_GRAPH_OPTIMIZATION_LEVEL: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
    INFERENCE_EXECUTION_PROVIDERS: z
      .string()
      .default('cpu')
      .transform((value) =>
        value
          .split(',')
          .map((entry) => entry.trim().toLowerCase())
          .filter((entry) => entry.length > 0),
      )
      .pipe(z.array(z.enum(['cpu', 'cuda', 'webgpu'])).min(1, 'must name at least one of cpu, cuda, webgpu')),
    /** When a provider of INFERENCE_EXECUTION_PROVIDERS cannot run here: `cpu` runs without it, `fail` refuses to start. */
    INFERENCE_PROVIDER_FALLBACK: z.enum(['cpu', 'fail']).default('cpu'),
    INFERENCE_MAX_BATCH_SIZE: positiveInt.max(256).default(4),
    INFERENCE_MAX_QUEUE_DELAY_MS: z.coerce.number().min(0).max(1000).default(2),
    INFERENCE_MAX_QUEUE_LENGTH: positiveInt.default(64),
    INFERENCE_TIMEOUT_MS: positiveInt.default(30_000),
    /**
     * How images are resized to the model input (src/inference/preprocess.ts): `pil-bilinear`, the
     * trainer's Pillow resize bit for bit, in the PREPROCESS_WORKERS threads (on the event loop with
     * PREPROCESS_WORKERS=0); `sharp-linear`, opt-in: libvips' linear kernel, faster on large images
     * but a few grey levels off the trainer's tensors.
     */
    INFERENCE_RESIZE: z.enum(['sharp-linear', 'pil-bilinear']).default('pil-bilinear'),

    EVALUATION_BATCH_SIZE: positiveInt.max(256).default(16),
    EVALUATION_JOB_EXPIRE_SECONDS: positiveInt.max(23 * 3600).default(6 * 3600),
    EVALUATION_RECOVERY_INTERVAL_SECONDS: positiveInt.max(3600).default(30),
  })
  .superRefine((env, ctx) => {
    if (env.INFERENCE_MAX_QUEUE_LENGTH < env.INFERENCE_MAX_BATCH_SIZE) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['INFERENCE_MAX_QUEUE_LENGTH'],
        message: 'must be at least INFERENCE_MAX_BATCH_SIZE',
      });
    }
    if (env.INSPECT_MAX_IN_FLIGHT < env.INSPECT_BATCH_MAX_IMAGES) {
      // An inspectBatch takes a slot per image, all at once: a larger one could never run.
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['INSPECT_MAX_IN_FLIGHT'],
        message: 'must be at least INSPECT_BATCH_MAX_IMAGES',
      });
    }
    if (env.AWS_ACCESS_KEY_ID && !env.AWS_SECRET_ACCESS_KEY) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['AWS_SECRET_ACCESS_KEY'],
        message: 'is required when AWS_ACCESS_KEY_ID is set',
      });
    }
  });

export type Env = z.infer<typeof configSchema>;
export type IntrospectionPolicy = NonNullable<Env['GRAPHQL_INTROSPECTION']>;

export interface Config {
  env: Env['NODE_ENV'];
  host: string;
  port: number;
  dataDir: string;
  logLevel: Env['LOG_LEVEL'];
  database: {
    url?: string;
    poolSize: number;
    embeddedPort: number;
    /** Seconds the database may be unreachable before /healthz fails. */
    livenessGraceSeconds: number;
  };
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
    /** Origins allowed to use presigned URLs from a browser; undefined: leave the bucket's CORS rules alone. */
    corsAllowedOrigins?: string[];
  };
  /** Where clients reach this service, without a trailing slash; undefined: each request's Host. */
  publicUrl?: string;
  adminApiKey?: string;
  graphql: {
    maxDepth: number;
    maxComplexity: number;
    maxAliases: number;
    maxDirectives: number;
    maxTokens: number;
    exposeStackTraces: boolean;
    /** `on`: anyone may introspect; `key`: only callers with an API key; `off`: nobody (src/graphql/introspection.ts). */
    introspection: IntrospectionPolicy;
  };
  /** The browser pages the service serves besides its API (src/http/console.route.ts). */
  pages: { console: boolean; graphiql: boolean };
  websocket: {
    maxPayloadBytes: number;
    connectionInitTimeoutMs: number;
    maxSubscriptionsPerConnection: number;
    maxConnectionsPerKey: number;
  };
  shutdownTimeoutMs: number;
  datasets: {
    /** Directories below which `localPath` imports may read; empty: local imports are refused. */
    importRoots: string[];
    uploadMaxBytes: number;
    uploadUrlExpirySeconds: number;
    imageMaxPixels: number;
    /** 0 disables the periodic sweep. */
    orphanSweepIntervalSeconds: number;
  };
  /** Whether this server process also runs the background job workers. */
  jobWorkersInProcess: boolean;
  models: {
    /** Largest ONNX file `registerModel` accepts. */
    maxBytes: number;
    /** Largest input height/width a model may declare. */
    maxInputSize: number;
    warmupTimeoutMs: number;
    /** Seed the demo dataset and model on the first start; undefined: only with embedded PostgreSQL. */
    seedDemo: boolean | undefined;
  };
  /** The INT8 versions' accuracy guard (src/services/accuracy-guard.service.ts). */
  accuracyGuard: {
    /** Largest drop, in points (0.01), of image AUROC, pixel AUROC or AUPRO against the fp32 version's evaluation. */
    tolerancePoints: number;
  };
  inspections: {
    batchMaxImages: number;
    /** Images being inspected at once in this process; more are refused with QUEUE_FULL up front. */
    maxInFlight: number;
    resize: 'sharp-linear' | 'pil-bilinear';
    /** Bytes of dataset images kept in memory; 0: none. */
    datasetImageCacheBytes: number;
    /** Threads that decode and pre-process images; 0: the event loop. */
    preprocessWorkers: number;
  };
  /** Options of the process's one InferenceEngine (src/inference). */
  inference: {
    workers: number;
    /** 0: the available cores divided by `workers`. */
    intraOpThreads: number;
    threadNice: number;
    graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
    executionProviders: Array<'cpu' | 'cuda' | 'webgpu'>;
    /** Checked at start (src/inference/execution-providers.ts). */
    providerFallback: 'cpu' | 'fail';
    maxBatchSize: number;
    maxQueueDelayMs: number;
    maxQueueLength: number;
    requestTimeoutMs: number;
  };
  evaluations: {
    /** TEST images read, inferred and stored per step; cancellation is checked between steps. */
    batchSize: number;
    /** pg-boss fails (and retries) a delivery still running after this long. */
    jobExpireSeconds: number;
    /** How often a process running workers looks for RUNNING evaluations whose worker died. */
    recoveryIntervalSeconds: number;
  };
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
    database: {
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      embeddedPort: env.EMBEDDED_POSTGRES_PORT,
      livenessGraceSeconds: env.LIVENESS_DATABASE_GRACE_SECONDS,
    },
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
      // The embedded s3rver listens on 127.0.0.1 only and every URL is signed: any origin will do.
      corsAllowedOrigins: env.S3_CORS_ALLOWED_ORIGINS ?? (s3Embedded ? ['*'] : undefined),
    },
    publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ''),
    adminApiKey: env.ADMIN_API_KEY,
    graphql: {
      maxDepth: env.GRAPHQL_MAX_DEPTH,
      maxComplexity: env.GRAPHQL_MAX_COMPLEXITY,
      maxAliases: env.GRAPHQL_MAX_ALIASES,
      maxDirectives: env.GRAPHQL_MAX_DIRECTIVES,
      maxTokens: env.GRAPHQL_MAX_TOKENS,
      exposeStackTraces: env.NODE_ENV === 'development',
      // Embedded mode is a workstation: explorers and code generators just work. A deployment
      // with its own database serves the schema to key holders only.
      introspection: env.GRAPHQL_INTROSPECTION ?? (env.DATABASE_URL ? 'key' : 'on'),
    },
    pages: { console: env.CONSOLE, graphiql: env.GRAPHIQL },
    websocket: {
      maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
      connectionInitTimeoutMs: env.WS_CONNECTION_INIT_TIMEOUT_MS,
      maxSubscriptionsPerConnection: env.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
      maxConnectionsPerKey: env.WS_MAX_CONNECTIONS_PER_KEY,
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    datasets: {
      importRoots: env.IMPORT_ROOTS.map((root) => path.resolve(root)),
      uploadMaxBytes: env.UPLOAD_MAX_BYTES,
      uploadUrlExpirySeconds: env.UPLOAD_URL_EXPIRY_SECONDS,
      imageMaxPixels: env.IMAGE_MAX_PIXELS,
      orphanSweepIntervalSeconds: env.ORPHAN_SWEEP_INTERVAL_SECONDS,
    },
    jobWorkersInProcess: env.JOB_WORKERS_IN_PROCESS,
    models: {
      maxBytes: env.MODEL_MAX_BYTES,
      maxInputSize: env.MODEL_MAX_INPUT_SIZE,
      warmupTimeoutMs: env.MODEL_WARMUP_TIMEOUT_MS,
      seedDemo: env.SEED_DEMO,
    },
    accuracyGuard: { tolerancePoints: env.MODEL_ACCURACY_TOLERANCE_POINTS },
    inspections: {
      batchMaxImages: env.INSPECT_BATCH_MAX_IMAGES,
      maxInFlight: env.INSPECT_MAX_IN_FLIGHT,
      resize: env.INFERENCE_RESIZE,
      datasetImageCacheBytes: env.DATASET_IMAGE_CACHE_MB * 1024 * 1024,
      preprocessWorkers: env.PREPROCESS_WORKERS,
    },
    inference: {
      workers: env.INFERENCE_WORKERS,
      intraOpThreads: env.INFERENCE_INTRA_OP_THREADS,
      threadNice: env.INFERENCE_THREAD_NICE,
      graphOptimizationLevel: env.INFERENCE_GRAPH_OPTIMIZATION_LEVEL,
      executionProviders: env.INFERENCE_EXECUTION_PROVIDERS,
      providerFallback: env.INFERENCE_PROVIDER_FALLBACK,
      maxBatchSize: env.INFERENCE_MAX_BATCH_SIZE,
      maxQueueDelayMs: env.INFERENCE_MAX_QUEUE_DELAY_MS,
      maxQueueLength: env.INFERENCE_MAX_QUEUE_LENGTH,
      requestTimeoutMs: env.INFERENCE_TIMEOUT_MS,
    },
    evaluations: {
      batchSize: env.EVALUATION_BATCH_SIZE,
      jobExpireSeconds: env.EVALUATION_JOB_EXPIRE_SECONDS,
      recoveryIntervalSeconds: env.EVALUATION_RECOVERY_INTERVAL_SECONDS,
    },
  };
}
