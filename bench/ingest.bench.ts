/**
 * Ingest throughput: images/s through presigned upload + confirm, and through an MVTec import,
 * next to the raw S3 PutObject rate of the same S3 server in the same run. The server under test
 * is the real compiled service (dist/src/main.js) in its own process; PostgreSQL (embedded) and
 * S3 (s3rver) run in this one. Absolute numbers depend on the machine; the ratios are what matter.
 *
 *   npm run bench:ingest                                  500 images of 256²
 *   node dist/bench/ingest.bench.js --images 200 --size 128
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startEmbeddedPostgres } from '../src/embedded/postgres';
import { startEmbeddedS3 } from '../src/embedded/s3';
import { mapConcurrently } from '../src/utils/concurrency';
import { ObjectStore } from '../src/storage/object-store';
import { writeMvtecCategory } from '../src/synthetic/mvtec-generator';
import { freePort } from './service';

const PROJECT_ROOT = resolve(__dirname, '..', '..');
const CONCURRENCY = 8;
const BATCH = 100;

interface Options {
  images: number;
  size: number;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (flag: string, fallback: number): number => {
    const index = argv.indexOf(flag);
    if (index < 0) return fallback;
    const parsed = Number(argv[index + 1]);
    if (!Number.isInteger(parsed) || parsed < 10)
      throw new Error(`${flag} needs an integer >= 10, got "${argv[index + 1] ?? ''}"`);
    return parsed;
  };
  return { images: value('--images', 500), size: value('--size', 256) };
}

interface Sample {
  split: 'TRAIN' | 'TEST';
  defectType: string | null;
  filename: string;
  bytes: Buffer;
  mask: Buffer | null;
  maskPath: string | null;
}

class Client {
  constructor(
    private readonly url: string,
    private readonly apiKey: string,
  ) {}

  async data<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.apiKey}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: T; errors?: unknown[] };
    if (body.errors?.length || !body.data) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
    return body.data;
  }
}

async function startServer(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'src', 'main.js')], {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /^GraphQL: (\S+)$/m.exec(output);
      if (match?.[1]) resolveUrl(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  return { url, child };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
  child.kill('SIGTERM');
  await exited;
}

function seconds(startedNs: bigint): number {
  return Number(process.hrtime.bigint() - startedNs) / 1e9;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

async function uploadAll(
  client: Client,
  categoryId: string,
  samples: Sample[],
): Promise<{ total: number; confirm: number; created: number }> {
  const groups = new Map<string, Sample[]>();
  for (const sample of samples) {
    const key = `${sample.split}/${sample.defectType ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), sample]);
  }
  let confirmSeconds = 0;
  let created = 0;
  const started = process.hrtime.bigint();
  for (const group of groups.values()) {
    for (let start = 0; start < group.length; start += BATCH) {
      const batch = group.slice(start, start + BATCH);
      const first = batch[0] as Sample;
      const requested = await client.data<{
        requestImageUploads: Array<{
          uploadId: string;
          url: string;
          maskUrl: string | null;
          headers: Array<{ name: string; value: string }>;
        }>;
      }>(
        `mutation($input: RequestImageUploadsInput!) { requestImageUploads(input: $input) { uploadId url maskUrl headers { name value } } }`,
        {
          input: {
            categoryId,
            split: first.split,
            defectType: first.defectType,
            files: batch.map((sample) => ({
              filename: sample.filename,
              contentType: 'image/png',
              byteSize: sample.bytes.length,
              sha256: sha256(sample.bytes),
              withMask: sample.mask !== null,
            })),
          },
        },
      );
      await mapConcurrently(requested.requestImageUploads, CONCURRENCY, async (target, index) => {
        const sample = batch[index] as Sample;
        const headers = Object.fromEntries(target.headers.map((header) => [header.name, header.value]));
        const put = async (url: string, body: Buffer): Promise<void> => {
          const response = await fetch(url, { method: 'PUT', headers, body });
          if (!response.ok) throw new Error(`PUT answered ${response.status}`);
        };
        await put(target.url, sample.bytes);
        if (sample.mask && target.maskUrl) await put(target.maskUrl, sample.mask);
      });
      const confirmStarted = process.hrtime.bigint();
      const confirmed = await client.data<{
        confirmImageUploads: { images: Array<{ id: string }>; refused: Array<{ code: string }> };
      }>('mutation($ids: [ID!]!) { confirmImageUploads(uploadIds: $ids) { images { id } refused { code } } }', {
        ids: requested.requestImageUploads.map((target) => target.uploadId),
      });
      confirmSeconds += seconds(confirmStarted);
      if (confirmed.confirmImageUploads.refused.length)
        throw new Error(`uploads refused: ${JSON.stringify(confirmed.confirmImageUploads.refused)}`);
      created += confirmed.confirmImageUploads.images.length;
    }
  }
  return { total: seconds(started), confirm: confirmSeconds, created };
}

async function importAndWait(
  client: Client,
  input: Record<string, unknown>,
): Promise<{ wall: number; running: number; imported: number }> {
  const started = process.hrtime.bigint();
  const job = await client.data<{ importMvtecDataset: { id: string } }>(
    'mutation($input: ImportMvtecDatasetInput!) { importMvtecDataset(input: $input) { id } }',
    { input },
  );
  for (;;) {
    const state = await client.data<{
      importJob: {
        status: string;
        imported: number;
        errorCount: number;
        startedAt: string | null;
        finishedAt: string | null;
      };
    }>('query($id: ID!) { importJob(id: $id) { status imported errorCount startedAt finishedAt } }', {
      id: job.importMvtecDataset.id,
    });
    const { status, imported, errorCount, startedAt, finishedAt } = state.importJob;
    if (status === 'SUCCEEDED' || status === 'FAILED') {
      if (status === 'FAILED' || errorCount > 0) throw new Error(`import ${status} with ${errorCount} problems`);
      const running = (new Date(finishedAt ?? 0).getTime() - new Date(startedAt ?? 0).getTime()) / 1000;
      return { wall: seconds(started), running, imported };
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), 'ingest-bench-'));
  chmodSync(tmp, 0o755);
  const trainCount = Math.round(options.images * 0.8);
  const testGoodCount = Math.round(options.images * 0.1);
  const testDefectCount = Math.max(1, Math.round((options.images - trainCount - testGoodCount) / 5));

  process.stdout.write(
    `generating ${trainCount + testGoodCount + 5 * testDefectCount} images of ${options.size}² ...\n`,
  );
  const summary = await writeMvtecCategory({
    outDir: join(tmp, 'data'),
    category: 'weave',
    seed: 2024,
    size: options.size,
    trainCount,
    testGoodCount,
    testDefectCount,
  });
  const samples: Sample[] = await Promise.all(
    summary.files.map(async (file) => ({
      split: file.split === 'train' ? ('TRAIN' as const) : ('TEST' as const),
      defectType: file.label === 'good' ? null : file.label,
      filename: file.imagePath,
      bytes: await readFile(join(summary.categoryDir, file.imagePath)),
      mask: file.maskPath ? await readFile(join(summary.categoryDir, file.maskPath)) : null,
      maskPath: file.maskPath,
    })),
  );
  const objectCount = samples.length + samples.filter((sample) => sample.mask).length;
  const megabytes = samples.reduce((sum, sample) => sum + sample.bytes.length + (sample.mask?.length ?? 0), 0) / 1e6;

  const postgres = await startEmbeddedPostgres({
    dataDir: join(tmp, 'postgres'),
    port: await freePort(),
    persistent: false,
  });
  const s3 = await startEmbeddedS3({ dataDir: join(tmp, 's3'), port: await freePort(), buckets: [] });
  let server: ChildProcess | undefined;
  try {
    await postgres.createDatabaseIfMissing('bench');
    const bucket = 'ingest-bench';
    const store = new ObjectStore({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      defaultUrlExpirySeconds: 900,
    });
    await store.ensureBucket();

    const rawStarted = process.hrtime.bigint();
    // The raw uploads double as the MVTec folder the S3-prefix import reads.
    await mapConcurrently(samples, CONCURRENCY, async (sample) => {
      await store.put(`incoming/weave/${sample.filename}`, sample.bytes, 'image/png');
      if (sample.mask && sample.maskPath)
        await store.put(`incoming/weave/${sample.maskPath}`, sample.mask, 'image/png');
    });
    const rawSeconds = seconds(rawStarted);
    store.destroy();

    const adminKey = `bench-admin-${randomBytes(16).toString('hex')}`;
    const started = await startServer({
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'production',
      LOG_LEVEL: 'error',
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: join(tmp, 'server'),
      DATABASE_URL: postgres.connectionString('bench'),
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: bucket,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      ADMIN_API_KEY: adminKey,
      IMPORT_ROOTS: join(tmp, 'data'),
    });
    server = started.child;
    const client = new Client(started.url, adminKey);
    const category = async (name: string): Promise<{ datasetId: string; categoryId: string }> => {
      const dataset = await client.data<{ createDataset: { id: string } }>(
        'mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }',
        { input: { name } },
      );
      const created = await client.data<{ createCategory: { id: string } }>(
        'mutation($input: CreateCategoryInput!) { createCategory(input: $input) { id } }',
        {
          input: { datasetId: dataset.createDataset.id, name: 'weave' },
        },
      );
      return { datasetId: dataset.createDataset.id, categoryId: created.createCategory.id };
    };

    const uploadTarget = await category('uploaded');
    const upload = await uploadAll(client, uploadTarget.categoryId, samples);
    const localImport = await importAndWait(client, {
      datasetId: (await category('imported from disk')).datasetId,
      source: { localPath: join(tmp, 'data') },
    });
    const s3Import = await importAndWait(client, {
      datasetId: (await category('imported from S3')).datasetId,
      source: { s3Prefix: 'incoming' },
    });

    const rate = (count: number, duration: number): string => (count / duration).toFixed(1).padStart(8);
    const ratio = (count: number, duration: number): string =>
      `${((count / duration / (samples.length / rawSeconds)) * 100).toFixed(0)}%`.padStart(6);
    const rows: Array<[string, number, number]> = [
      ['raw S3 PutObject (image + mask objects)', samples.length, rawSeconds],
      ['upload end to end (request, PUT, confirm)', upload.created, upload.total],
      ['confirm + store (validate, copy, insert)', upload.created, upload.confirm],
      ['import from local folder (job running)', localImport.imported, localImport.running],
      ['import from local folder (mutation to done)', localImport.imported, localImport.wall],
      ['import from S3 prefix (job running)', s3Import.imported, s3Import.running],
    ];
    process.stdout.write(
      `\n${samples.length} images (${objectCount} objects with masks, ${megabytes.toFixed(1)} MB), ${options.size}², ` +
        `client concurrency ${CONCURRENCY}, embedded PostgreSQL, s3rver\n\n` +
        `${'path'.padEnd(46)}${'images/s'.padStart(8)}${'seconds'.padStart(10)}${'vs raw'.padStart(8)}\n` +
        rows
          .map(
            ([name, count, duration]) =>
              `${name.padEnd(46)}${rate(count, duration)}${duration.toFixed(2).padStart(10)}  ${ratio(count, duration)}`,
          )
          .join('\n') +
        '\n',
    );
  } finally {
    if (server) await stopServer(server);
    await s3.stop();
    await postgres.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
