/**
 * What the benches that drive the real server share: PostgreSQL and S3 in a process of their
 * own (as in a deployment, so the server's figures are its own), the server, a GraphQL client,
 * the machine's CPU figures, and a category of generated images with a model active.
 *
 * Run as a script (`node dist/bench/service.js --infrastructure <dir>`) it is that
 * infrastructure process.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/embedded/postgres';
import { startEmbeddedS3 } from '../src/embedded/s3';
import { writeMvtecCategory } from '../src/synthetic/mvtec-generator';
import { PROJECT_ROOT, spawnAndWait, sum, type Child } from './support';

export const BUCKET = 'bench';

export interface InfrastructureInfo {
  databaseUrl: string;
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string };
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function runInfrastructure(directory: string): Promise<void> {
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(directory, 'postgres'),
    port: await freePort(),
    persistent: false,
  });
  await postgres.createDatabaseIfMissing('bench');
  const s3 = await startEmbeddedS3({ dataDir: path.join(directory, 's3'), port: await freePort(), buckets: [BUCKET] });
  const info: InfrastructureInfo = {
    databaseUrl: postgres.connectionString('bench'),
    s3: { endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  };
  process.stdout.write(`INFRASTRUCTURE ${JSON.stringify(info)}\n`);
  process.once('SIGTERM', () => {
    void Promise.allSettled([s3.stop(), postgres.stop()]).then(() => process.exit(0));
  });
}

/** PostgreSQL and S3 in a child process, in a temporary directory removed by stop(). */
export async function startInfrastructure(): Promise<{ info: InfrastructureInfo; stop(): Promise<void> }> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'bench-service-'));
  // Run as root, embedded PostgreSQL drops to an unprivileged user that must reach its data dir.
  chmodSync(directory, 0o755);
  const child = await spawnAndWait(
    [__filename, '--infrastructure', directory],
    { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    /^INFRASTRUCTURE (.+)$/m,
  );
  return {
    info: JSON.parse(child.match[1] as string) as InfrastructureInfo,
    async stop() {
      await child.stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** The real server (dist/src/main.js) on the infrastructure; `env` adds to or overrides the defaults. */
export async function startService(
  infrastructure: InfrastructureInfo,
  adminKey: string,
  env: NodeJS.ProcessEnv,
): Promise<Child & { url: string; baseUrl: string; pid: number }> {
  const server = await spawnAndWait(
    [path.join(PROJECT_ROOT, 'dist', 'src', 'main.js')],
    {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: infrastructure.databaseUrl,
      S3_ENDPOINT: infrastructure.s3.endpoint,
      S3_BUCKET: BUCKET,
      AWS_ACCESS_KEY_ID: infrastructure.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: infrastructure.s3.secretAccessKey,
      ADMIN_API_KEY: adminKey,
      SEED_DEMO: 'false',
      JOB_WORKERS_IN_PROCESS: 'false',
      ...env,
    },
    /^GraphQL: (\S+)$/m,
  );
  const url = server.match[1] as string;
  return { ...server, url, baseUrl: url.replace(/\/graphql$/, ''), pid: server.child.pid as number };
}

/** Polls /readyz until it answers 200 (the active models are loaded and warmed up). */
export async function waitUntilReady(baseUrl: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await fetch(`${baseUrl}/readyz`).catch(() => null))?.status !== 200) {
    if (Date.now() > deadline) throw new Error(`${baseUrl} was not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface GraphQLResult<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

export class Client {
  constructor(
    private readonly url: string,
    private readonly key: string | null,
  ) {}

  async result<T>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResult<T>> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.key ? { authorization: `Bearer ${this.key}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as GraphQLResult<T>;
  }

  async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const result = await this.result<T>(query, variables);
    if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
    return result.data;
  }
}

export type UploadTarget = { uploadId: string; url: string; headers: Array<{ name: string; value: string }> };

export async function put(url: string, headers: UploadTarget['headers'], body: Buffer): Promise<void> {
  const response = await fetch(url, {
    method: 'PUT',
    headers: Object.fromEntries(headers.map((header) => [header.name, header.value])),
    body,
  });
  if (!response.ok) throw new Error(`PUT answered ${response.status}`);
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Idle (idle + iowait) and total jiffies of all CPUs, from /proc/stat's aggregate line; null off Linux. */
export function readCpuTimes(): { idle: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('cpu '));
    if (!line) return null;
    // user nice system idle iowait irq softirq steal; guest and guest_nice are already in user and nice.
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (fields.length < 5 || fields.some((field) => !Number.isFinite(field))) return null;
    return { idle: (fields[3] as number) + (fields[4] as number), total: sum(fields) };
  } catch {
    return null;
  }
}

/** The machine's CPU busy share between two readCpuTimes() (percent), null when unknown. */
export function busyPercent(
  start: ReturnType<typeof readCpuTimes>,
  end: ReturnType<typeof readCpuTimes>,
): number | null {
  if (!start || !end || end.total <= start.total) return null;
  return 100 * (1 - (end.idle - start.idle) / (end.total - start.total));
}

/** `count` generated normal TEST images (`size`² PNG, the generator's `seed`), as bytes. */
export async function generatedImages(images: { size: number; count: number; seed: number }): Promise<Buffer[]> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'bench-images-'));
  try {
    const summary = await writeMvtecCategory({
      outDir: directory,
      category: 'bench',
      seed: images.seed,
      size: images.size,
      trainCount: 0,
      testGoodCount: images.count,
      testDefectCount: 0,
    });
    return summary.files.map((file) => readFileSync(path.join(summary.categoryDir, file.imagePath)));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/**
 * A category with `count` generated TEST images (`size`², the generator's `seed`), uploaded and
 * confirmed, and the model registered and activated; returns their ids and the image bytes.
 */
export async function prepareCategory(
  client: Client,
  label: string,
  modelPath: string,
  images: { size: number; count: number; seed: number },
): Promise<{ categoryId: string; modelId: string; imageIds: string[]; files: Buffer[] }> {
  const dataset = await client.request<{ createDataset: { id: string } }>(
    'mutation($n: String!) { createDataset(input: { name: $n }) { id } }',
    { n: `bench ${label}` },
  );
  const category = await client.request<{ createCategory: { id: string } }>(
    'mutation($d: ID!) { createCategory(input: { datasetId: $d, name: "bench" }) { id } }',
    { d: dataset.createDataset.id },
  );
  const categoryId = category.createCategory.id;
  const imageIds: string[] = [];
  const files: Buffer[] = [];
  for (const bytes of await generatedImages(images)) {
    const targets = await client.request<{ requestImageUploads: UploadTarget[] }>(
      'mutation($input: RequestImageUploadsInput!) { requestImageUploads(input: $input) { uploadId url headers { name value } } }',
      {
        input: {
          categoryId,
          split: 'TEST',
          files: [{ filename: 'x.png', contentType: 'image/png', byteSize: bytes.length, sha256: sha256(bytes) }],
        },
      },
    );
    const target = targets.requestImageUploads[0] as UploadTarget;
    await put(target.url, target.headers, bytes);
    const confirmed = await client.request<{ confirmImageUploads: { images: Array<{ id: string }> } }>(
      'mutation($ids: [ID!]!) { confirmImageUploads(uploadIds: $ids) { images { id } } }',
      { ids: [target.uploadId] },
    );
    imageIds.push((confirmed.confirmImageUploads.images[0] as { id: string }).id);
    files.push(bytes);
  }
  const modelBytes = readFileSync(modelPath);
  const upload = await client.request<{ requestModelUpload: UploadTarget }>(
    'mutation($input: RequestModelUploadInput!) { requestModelUpload(input: $input) { uploadId url headers { name value } } }',
    { input: { byteSize: modelBytes.length, sha256: sha256(modelBytes) } },
  );
  await put(upload.requestModelUpload.url, upload.requestModelUpload.headers, modelBytes);
  const model = await client.request<{ registerModel: { id: string; status: string; failureReason: string | null } }>(
    'mutation($input: RegisterModelInput!) { registerModel(input: $input) { id status failureReason } }',
    { input: { categoryId, name: label, uploadId: upload.requestModelUpload.uploadId } },
  );
  if (model.registerModel.status !== 'READY')
    throw new Error(`the ${label} model did not validate: ${model.registerModel.failureReason}`);
  await client.request('mutation($id: ID!) { activateModel(id: $id) { id } }', { id: model.registerModel.id });
  return { categoryId, modelId: model.registerModel.id, imageIds, files };
}

if (require.main === module) {
  const flag = process.argv.indexOf('--infrastructure');
  if (flag < 0) {
    process.stderr.write('usage: node dist/bench/service.js --infrastructure <directory>\n');
    process.exit(2);
  }
  runInfrastructure(process.argv[flag + 1] as string).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
