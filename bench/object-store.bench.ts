/**
 * The ObjectStore's two S3 speed-ups, each against its baseline, interleaved in one run:
 *
 *  - presigned GETs: `presignGet` (signed directly) against `presignGetWithSdk` (the SDK's
 *    `getSignedUrl`), wall time per URL;
 *  - PUTs of a 100 kB body: an S3 client with `cacheMiddleware: true` (the ObjectStore's
 *    setting) against the same client without it, this process's CPU time per PUT, with
 *    s3rver in a process of its own.
 *
 *   npm run bench:object-store            # = npm run build && node dist/bench/object-store.bench.js
 *   node dist/bench/object-store.bench.js --rounds 5 --count 300
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startEmbeddedS3 } from '../src/embedded/s3';
import { ObjectStore } from '../src/storage/object-store';
import { percentile, spawnAndWait } from './support';

const BUCKET = 'bench';
const BODY_BYTES = 100_000;

interface S3Info {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Child mode: s3rver in this process, its endpoint on stdout. */
async function serveS3(directory: string): Promise<void> {
  const s3 = await startEmbeddedS3({ dataDir: directory, port: 0, buckets: [BUCKET] });
  const info: S3Info = { endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  process.stdout.write(`S3 ${JSON.stringify(info)}\n`);
  process.once('SIGTERM', () => void s3.stop().then(() => process.exit(0)));
}

function numberFlag(argv: readonly string[], flag: string, fallback: number): number {
  const index = argv.indexOf(flag);
  const value = index >= 0 ? Number(argv[index + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} takes a positive integer`);
  return value;
}

/** Milliseconds per call of `presign` over `count` keys. */
async function timePresigns(count: number, presign: (key: string) => Promise<string>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i++) await presign(`inspections/${i}/heatmap.png`);
  return (performance.now() - started) / count;
}

/** This process's CPU milliseconds (user + system) per PUT over `count` PUTs. */
async function cpuPerPut(client: S3Client, count: number, body: Buffer): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: `puts/${i % 50}`,
        Body: body,
        ContentType: 'image/png',
        ContentLength: body.length,
      }),
    );
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / count;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const s3Flag = argv.indexOf('--s3');
  if (s3Flag >= 0) return serveS3(argv[s3Flag + 1] as string);
  const rounds = numberFlag(argv, '--rounds', 5);
  const count = numberFlag(argv, '--count', 300);

  const directory = mkdtempSync(path.join(os.tmpdir(), 'bench-object-store-'));
  const s3Process = await spawnAndWait([__filename, '--s3', directory], { PATH: process.env.PATH ?? '' }, /^S3 (.+)$/m);
  try {
    const s3 = JSON.parse(s3Process.match[1] as string) as S3Info;
    const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    const store = new ObjectStore({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket: BUCKET,
      forcePathStyle: true,
      credentials,
      defaultUrlExpirySeconds: 3600,
    });
    const client = (cacheMiddleware: boolean): S3Client =>
      new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials, cacheMiddleware });
    const cached = client(true);
    const uncached = client(false);
    const body = randomBytes(BODY_BYTES);
    // Warm-up: the presign template, connections, JIT.
    await timePresigns(50, (key) => store.presignGet(key, { contentType: 'image/png' }));
    await timePresigns(50, (key) => store.presignGetWithSdk(key, { contentType: 'image/png' }));
    await cpuPerPut(cached, 20, body);
    await cpuPerPut(uncached, 20, body);

    const samples = {
      direct: [] as number[],
      sdk: [] as number[],
      cachedPut: [] as number[],
      uncachedPut: [] as number[],
    };
    for (let round = 0; round < rounds; round++) {
      samples.sdk.push(await timePresigns(count, (key) => store.presignGetWithSdk(key, { contentType: 'image/png' })));
      samples.direct.push(await timePresigns(count, (key) => store.presignGet(key, { contentType: 'image/png' })));
      samples.uncachedPut.push(await cpuPerPut(uncached, count / 3, body));
      samples.cachedPut.push(await cpuPerPut(cached, count / 3, body));
    }
    store.destroy();
    cached.destroy();
    uncached.destroy();

    const median = (values: number[]): number => percentile(values, 50);
    const line = (label: string, baseline: number, faster: number, unit: string): string =>
      `${label}: ${faster.toFixed(3)} against ${baseline.toFixed(3)} ${unit} (baseline ÷ new ${(baseline / faster).toFixed(2)}×)`;
    process.stdout.write(
      `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.availableParallelism()}, load average ${os
        .loadavg()
        .map((load) => load.toFixed(2))
        .join(' ')}, Node ${process.version}; ` +
        `medians of ${rounds} interleaved rounds\n` +
        `${line('presigned GET, presignGet against getSignedUrl', median(samples.sdk), median(samples.direct), 'ms per URL')}\n` +
        `${line(`${BODY_BYTES / 1000} kB PUT to s3rver, cacheMiddleware on against off`, median(samples.uncachedPut), median(samples.cachedPut), 'ms of client CPU per PUT')}\n`,
    );
  } finally {
    await s3Process.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
