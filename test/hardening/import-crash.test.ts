// kill -9 of the server in the middle of an import: the images being written at that moment
// have objects in the bucket but no rows. A new server on the same database and bucket resumes
// the job, deletes those objects at once (not an hour later, by the orphan sweep), and finishes
// with every file either imported or named in the job's problems.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { writeMvtecCategory, type GeneratedCategorySummary } from '../../src/synthetic/mvtec-generator';
import { CREATE_DATASET } from '../datasets/helpers';
import { GraphQLTestClient } from '../support/graphql-client';
import { uniqueName } from '../support/resources';
import { StorageProbe } from '../support/storage-probe';
import { startTestServer, type TestServer } from '../support/test-server';

const IMPORT = 'mutation($input: ImportMvtecDatasetInput!) { importMvtecDataset(input: $input) { id } }';
const JOB = `query($id: ID!) {
  importJob(id: $id) { status total processed imported duplicates errorCount attempts errors { path code } }
}`;

interface JobState {
  status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  total: number | null;
  processed: number;
  imported: number;
  duplicates: number;
  errorCount: number;
  attempts: number;
  errors: Array<{ path: string; code: string }>;
}

let root: string;
let generated: GeneratedCategorySummary;
const servers: TestServer[] = [];
const probes: StorageProbe[] = [];

beforeAll(async () => {
  root = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('import-crash-'));
  // Mostly defective images: each is two objects (image, mask) written before its row.
  generated = await writeMvtecCategory({
    outDir: root,
    category: 'carpet',
    seed: 5,
    size: 64,
    trainCount: 20,
    testGoodCount: 5,
    testDefectCount: 25,
  });
});

afterAll(async () => {
  for (const probe of probes) await probe.close();
  for (const server of servers) await server.stop();
  await rm(root, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What the bucket holds under the image and mask prefixes, and what the rows point at. */
async function objectsAndRows(probe: StorageProbe): Promise<{ objects: string[]; referenced: string[] }> {
  const objects = [...(await probe.keys('images/')), ...(await probe.keys('masks/'))].sort();
  const { rows } = await probe.query<{ key: string }>(
    `SELECT object_key AS key FROM image UNION ALL SELECT mask_object_key FROM image WHERE mask_object_key IS NOT NULL`,
  );
  return { objects, referenced: rows.map((row) => row.key).sort() };
}

test('kill -9 while images are being written: the resumed job deletes what the dead run left and finishes', async () => {
  const first = await startTestServer({ env: { IMPORT_ROOTS: root } });
  servers.push(first);
  const probe = new StorageProbe(first);
  probes.push(probe);
  const admin = new GraphQLTestClient(first.url, first.adminKey);
  const datasetId = (
    await admin.data<{ createDataset: { id: string } }>(CREATE_DATASET, { input: { name: 'killed import' } })
  ).createDataset.id;
  const jobId = (
    await admin.data<{ importMvtecDataset: { id: string } }>(IMPORT, {
      input: { datasetId, source: { localPath: root } },
    })
  ).importMvtecDataset.id;

  // Killed once some images are stored, while others are being written (their objects recorded, rows not committed).
  const total = generated.imageCount;
  await until('the import to be under way', async () => {
    const { rows } = await probe.query<{ processed: number; status: string; pending: string }>(
      `SELECT processed, status, (SELECT count(*) FROM import_pending_object WHERE import_job_id = $1) AS pending
         FROM import_job WHERE id = $1`,
      [jobId],
    );
    const job = rows[0];
    return job && job.status === 'RUNNING' && job.processed >= 5 && Number(job.pending) > 0 ? job : null;
  });
  first.child.kill('SIGKILL');
  expect(await first.stop()).toMatchObject({ signal: 'SIGKILL' });

  const atKill = await objectsAndRows(probe);
  const stored = await probe.count('SELECT count(*) FROM image');
  expect(stored).toBeLessThan(total);
  // The dead run's unfinished images: objects without rows (the orphan sweep would leave them for an hour).
  const leftovers = atKill.objects.filter((key) => !atKill.referenced.includes(key));
  expect(leftovers.length).toBeGreaterThan(0);
  expect(await probe.count('SELECT count(*) FROM import_pending_object')).toBeGreaterThan(0);

  const second = await startTestServer({
    env: { IMPORT_ROOTS: root },
    databaseUrl: first.databaseUrl,
    bucket: first.bucket,
    adminKey: first.adminKey,
  });
  servers.push(second);
  const client = new GraphQLTestClient(second.url, second.adminKey);
  const final = await until('the job to finish', async () => {
    const { importJob } = await client.data<{ importJob: JobState }>(JOB, { id: jobId });
    return importJob.status === 'SUCCEEDED' || importJob.status === 'FAILED' ? importJob : null;
  });
  expect(final).toMatchObject({
    status: 'SUCCEEDED',
    total,
    processed: total,
    imported: total,
    duplicates: 0,
    errorCount: 0,
    errors: [],
    attempts: 2,
  });

  // Every file of the source is an image of the dataset (none in the problems: all were valid).
  const { rows } = await probe.query<{ original_filename: string }>(
    `SELECT image.original_filename FROM image JOIN category ON category.id = image.category_id
      WHERE category.dataset_id = $1 AND image.deleted_at IS NULL`,
    [datasetId],
  );
  expect(rows.map((row) => row.original_filename).sort()).toEqual(generated.files.map((file) => file.imagePath).sort());

  // Exactly one object per image and per mask: what the dead run left is gone, nothing is missing.
  const after = await objectsAndRows(probe);
  expect(after.objects).toEqual(after.referenced);
  expect(after.objects).toHaveLength(generated.imageCount + generated.maskCount);
  for (const key of leftovers) expect(after.objects).not.toContain(key);
  expect(await probe.count('SELECT count(*) FROM import_pending_object')).toBe(0);

  // The new server is alive and healthy.
  expect(second.child.exitCode).toBeNull();
  expect((await fetch(`${second.baseUrl}/healthz`)).status).toBe(200);
});
