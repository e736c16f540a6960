// Importing MVTec-layout folders, from a local folder and from an S3 prefix, as an engineer
// would: exact counts per split and defect type, every mask paired, nothing added twice,
// paths outside IMPORT_ROOTS refused, and a job that survives its server being killed.
import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeMvtecCategory, type GeneratedCategorySummary } from '../../src/synthetic/mvtec-generator';
import { GraphQLTestClient, SubscriptionRecorder } from '../support/graphql-client';
import { uniqueName } from '../support/resources';
import { startTestServer, type TestServer } from '../support/test-server';
import { CREATE_DATASET, createClients, sha256, StorageProbe, type Clients } from './helpers';

const IMPORT =
  'mutation($input: ImportMvtecDatasetInput!) { importMvtecDataset(input: $input) { id status processed total } }';
const PROGRESS = `subscription($id: ID!) {
  importProgress(id: $id) { id status processed total imported duplicates errorCount attempts errors { path code message } }
}`;

interface JobState {
  id: string;
  status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  processed: number;
  total: number | null;
  imported: number;
  duplicates: number;
  errorCount: number;
  attempts: number;
  errors: Array<{ path: string; code: string; message: string }>;
}

const FINAL = new Set(['SUCCEEDED', 'FAILED']);
/** The generated 64² PNGs are far smaller. */
const UPLOAD_MAX_BYTES = 100_000;

let root: string;
let server: TestServer;
let clients: Clients;
let probe: StorageProbe;
let generated: GeneratedCategorySummary;

beforeAll(async () => {
  root = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('imports-'));
  generated = await writeMvtecCategory({
    outDir: path.join(root, 'mvtec'),
    category: 'weave',
    seed: 7,
    size: 64,
    trainCount: 6,
    testGoodCount: 3,
    testDefectCount: 2,
  });
  server = await startTestServer({ env: { IMPORT_ROOTS: root, UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES) } });
  clients = await createClients(server);
  probe = new StorageProbe(server);
});

afterAll(async () => {
  await probe?.close();
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

async function createDataset(name: string): Promise<string> {
  return (await clients.labeler.data<{ createDataset: { id: string } }>(CREATE_DATASET, { input: { name } }))
    .createDataset.id;
}

/** Follows a job through importProgress until its final state; returns every state seen. */
async function follow(
  client: GraphQLTestClient,
  jobId: string,
  until: (state: JobState) => boolean = (state) => FINAL.has(state.status),
): Promise<JobState[]> {
  const websocket = client.websocket();
  const recorder = new SubscriptionRecorder<{ importProgress: JobState }>(websocket, PROGRESS, { id: jobId });
  try {
    const results = await recorder.waitFor(
      (all) => all.some((result) => result.data && until(result.data.importProgress)),
      90_000,
    );
    expect(results.every((result) => !result.errors)).toBe(true);
    return results.flatMap((result) => (result.data ? [result.data.importProgress] : []));
  } finally {
    recorder.dispose();
    await websocket.dispose();
  }
}

async function importAndWait(input: Record<string, unknown>): Promise<JobState> {
  const started = await clients.labeler.data<{ importMvtecDataset: { id: string; status: string } }>(IMPORT, { input });
  const states = await follow(clients.viewer, started.importMvtecDataset.id);
  return states[states.length - 1] as JobState;
}

interface CategoryCounts {
  imageCount: number;
  train: number;
  testGood: number;
  defectTypes: string[];
  perDefect: Record<string, number>;
}

async function countsOf(datasetId: string, categoryName: string): Promise<CategoryCounts> {
  const data = await clients.viewer.data<{
    dataset: {
      categories: Array<{
        id: string;
        name: string;
        imageCount: number;
        train: number;
        testGood: number;
        defectTypes: string[];
      }>;
    };
  }>(
    'query($id: ID!) { dataset(id: $id) { categories { id name imageCount train: imageCount(split: TRAIN) testGood: imageCount(split: TEST, good: true) defectTypes } } }',
    { id: datasetId },
  );
  const category = data.dataset.categories.find((entry) => entry.name === categoryName);
  if (!category) throw new Error(`no category ${categoryName}`);
  const perDefect: Record<string, number> = {};
  for (const defectType of category.defectTypes) {
    const counted = await clients.viewer.data<{ category: { imageCount: number } }>(
      'query($id: ID!, $d: String) { category(id: $id) { imageCount(split: TEST, defectType: $d) } }',
      {
        id: category.id,
        d: defectType,
      },
    );
    perDefect[defectType] = counted.category.imageCount;
  }
  return {
    imageCount: category.imageCount,
    train: category.train,
    testGood: category.testGood,
    defectTypes: category.defectTypes,
    perDefect,
  };
}

function expectedCounts(summary: GeneratedCategorySummary): CategoryCounts {
  const { good, ...defects } = summary.counts.test;
  const perDefect = Object.fromEntries(Object.entries(defects).filter(([, count]) => count > 0));
  return {
    imageCount: summary.imageCount,
    train: summary.counts.train.good,
    testGood: good,
    defectTypes: Object.keys(perDefect).sort(),
    perDefect,
  };
}

/** Every stored mask is the generator's mask of that very image (paired by stem, not by order). */
async function expectMasksPaired(datasetId: string, summary: GeneratedCategorySummary): Promise<void> {
  const { rows } = await probe.query<{
    original_filename: string;
    mask_object_key: string | null;
    defect_type: string | null;
  }>(
    `SELECT image.original_filename, image.mask_object_key, image.defect_type FROM image JOIN category ON category.id = image.category_id
      WHERE category.dataset_id = $1 AND image.deleted_at IS NULL`,
    [datasetId],
  );
  expect(rows).toHaveLength(summary.imageCount);
  const byPath = new Map(summary.files.map((file) => [file.imagePath, file]));
  for (const row of rows) {
    const file = byPath.get(row.original_filename);
    expect(file).toBeDefined();
    if (!file?.maskPath) {
      expect(row.mask_object_key).toBeNull();
      continue;
    }
    expect(row.mask_object_key).not.toBeNull();
    const stored = await probe.store.get(row.mask_object_key ?? '');
    expect(sha256(stored)).toBe(sha256(await readFile(path.join(summary.categoryDir, file.maskPath))));
  }
}

describe('import from a local folder', () => {
  let datasetId: string;
  let first: JobState;

  beforeAll(async () => {
    datasetId = await createDataset('local import');
    first = await importAndWait({ datasetId, source: { localPath: path.join(root, 'mvtec') }, categories: ['weave'] });
  });

  test('gives exactly the generated counts per split and defect type, every mask paired', async () => {
    expect(first).toMatchObject({
      status: 'SUCCEEDED',
      total: generated.imageCount,
      processed: generated.imageCount,
      imported: generated.imageCount,
      duplicates: 0,
      errorCount: 0,
      errors: [],
    });
    expect(await countsOf(datasetId, 'weave')).toEqual(expectedCounts(generated));
    await expectMasksPaired(datasetId, generated);
    expect(await probe.count('SELECT count(*) FROM image WHERE mask_object_key IS NOT NULL')).toBe(generated.maskCount);
  });

  test('a second import adds nothing', async () => {
    const again = await importAndWait({ datasetId, source: { localPath: path.join(root, 'mvtec') } });
    expect(again).toMatchObject({
      status: 'SUCCEEDED',
      total: generated.imageCount,
      imported: 0,
      duplicates: generated.imageCount,
      errorCount: 0,
    });
    expect(await countsOf(datasetId, 'weave')).toEqual(expectedCounts(generated));
    expect(
      await probe.count(
        `SELECT count(*) FROM image JOIN category ON category.id = image.category_id WHERE category.dataset_id = $1`,
        [datasetId],
      ),
    ).toBe(generated.imageCount);
  });

  test('a client subscribing after the job ended gets its final state at once, then the end', async () => {
    const websocket = clients.viewer.websocket();
    const recorder = new SubscriptionRecorder<{ importProgress: JobState }>(websocket, PROGRESS, { id: first.id });
    try {
      await recorder.waitForCompletion(30_000);
      expect(recorder.results.map((result) => result.data?.importProgress.status)).toEqual(['SUCCEEDED']);
      expect(recorder.results[0]?.data?.importProgress.imported).toBe(generated.imageCount);
    } finally {
      recorder.dispose();
      await websocket.dispose();
    }
    const job = await clients.viewer.data<{
      importJob: {
        status: string;
        dataset: { id: string };
        source: { localPath: string | null; s3Prefix: string | null };
      };
    }>('query($id: ID!) { importJob(id: $id) { status dataset { id } source { localPath s3Prefix } } }', {
      id: first.id,
    });
    expect(job.importJob).toEqual({
      status: 'SUCCEEDED',
      dataset: { id: datasetId },
      source: { localPath: path.join(root, 'mvtec'), s3Prefix: null },
    });
  });
});

describe('import from an S3 prefix of the service’s bucket', () => {
  test('gives the same counts and pairs every mask', async () => {
    for (const file of generated.files) {
      for (const relative of file.maskPath ? [file.imagePath, file.maskPath] : [file.imagePath]) {
        await probe.store.put(
          `incoming/mvtec/weave/${relative}`,
          await readFile(path.join(generated.categoryDir, relative)),
          'image/png',
        );
      }
    }
    await probe.store.put('incoming/mvtec/readme.txt', Buffer.from('MVTec-style data'), 'text/plain');
    const datasetId = await createDataset('s3 import');
    const job = await importAndWait({ datasetId, source: { s3Prefix: 'incoming/mvtec/' } });
    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      total: generated.imageCount,
      imported: generated.imageCount,
      errorCount: 0,
    });
    expect(await countsOf(datasetId, 'weave')).toEqual(expectedCounts(generated));
    await expectMasksPaired(datasetId, generated);
    const again = await importAndWait({ datasetId, source: { s3Prefix: 'incoming/mvtec' }, categories: ['weave'] });
    expect(again).toMatchObject({ status: 'SUCCEEDED', imported: 0, duplicates: generated.imageCount });
  });
});

describe('what an import refuses', () => {
  let datasetId: string;

  beforeAll(async () => {
    datasetId = await createDataset('refused imports');
  });

  test('local paths outside IMPORT_ROOTS are FORBIDDEN, through .. or a symbolic link too', async () => {
    await symlink('/etc', path.join(root, 'link-to-etc'));
    for (const localPath of [
      '/etc',
      `${root}/../`,
      path.join(root, 'mvtec', '..', '..'),
      path.join(root, 'link-to-etc'),
    ]) {
      expect(await clients.labeler.errorCode(IMPORT, { input: { datasetId, source: { localPath } } })).toBe(
        'FORBIDDEN',
      );
    }
    expect(
      await clients.labeler.errorCode(IMPORT, { input: { datasetId, source: { localPath: 'relative/path' } } }),
    ).toBe('BAD_USER_INPUT');
    expect(
      await clients.labeler.errorCode(IMPORT, {
        input: { datasetId, source: { localPath: path.join(root, 'missing') } },
      }),
    ).toBe('SOURCE_NOT_FOUND');
    expect(await probe.count('SELECT count(*) FROM import_job WHERE dataset_id = $1', [datasetId])).toBe(0);
  });

  test('bad sources and category names are refused before a job exists', async () => {
    const localPath = path.join(root, 'mvtec');
    const objectsBefore = await probe.keys('');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ source: { localPath }, categories: ['../weave'] }, 'BAD_USER_INPUT'],
      [{ source: { localPath }, categories: ['weave/train'] }, 'BAD_USER_INPUT'],
      [{ source: { localPath }, categories: ['.'] }, 'BAD_USER_INPUT'],
      [{ source: { s3Prefix: '../other' } }, 'BAD_USER_INPUT'],
      [{ source: { s3Prefix: '/absolute' } }, 'BAD_USER_INPUT'],
      [{ source: { s3Prefix: 'a/./b' } }, 'BAD_USER_INPUT'],
      // The service's own objects: none of its prefixes, nor anything inside one.
      [{ source: { s3Prefix: 'uploads/' } }, 'FORBIDDEN'],
      [{ source: { s3Prefix: 'images' } }, 'FORBIDDEN'],
      [{ source: { s3Prefix: 'masks/weave' } }, 'FORBIDDEN'],
      [{ source: { s3Prefix: 'models/' } }, 'FORBIDDEN'],
      [{ source: { s3Prefix: 'model-uploads' } }, 'FORBIDDEN'],
      [{ source: { s3Prefix: 'inspections/3f1c1f5e-0000-4000-8000-000000000000' } }, 'FORBIDDEN'],
      [{ source: { s3Prefix: 'inspection-uploads/' } }, 'FORBIDDEN'],
      [{ source: { s3Prefix: 'evaluations' } }, 'FORBIDDEN'],
      [{ source: { s3Prefix: '' } }, 'BAD_USER_INPUT'],
      [{ source: { s3Prefix: '/' } }, 'BAD_USER_INPUT'],
      [{ source: {} }, 'BAD_USER_INPUT'],
      [{ source: { localPath, s3Prefix: 'incoming' } }, 'BAD_USER_INPUT'],
    ];
    for (const [input, code] of cases)
      expect([input, await clients.labeler.errorCode(IMPORT, { input: { datasetId, ...input } })]).toEqual([
        input,
        code,
      ]);
    expect(
      await clients.labeler.errorCode(IMPORT, {
        input: { datasetId: '3f1c1f5e-0000-4000-8000-000000000000', source: { localPath } },
      }),
    ).toBe('NOT_FOUND');
    expect(await probe.count('SELECT count(*) FROM import_job WHERE dataset_id = $1', [datasetId])).toBe(0);
    expect(await probe.keys('')).toEqual(objectsBefore);
  });

  test('an image without its mask, a mask without its image, a link leading out and stray files are reported, not silently dropped', async () => {
    const broken = path.join(root, 'broken');
    await mkdir(broken, { recursive: true });
    await cp(generated.categoryDir, path.join(broken, 'weave'), { recursive: true });
    const defective = generated.files.filter((file) => file.maskPath !== null);
    const [withoutMask, withoutImage] = defective;
    if (!withoutMask?.maskPath || !withoutImage?.maskPath) throw new Error('need two defective images');
    await unlink(path.join(broken, 'weave', withoutMask.maskPath));
    await unlink(path.join(broken, 'weave', withoutImage.imagePath));
    await symlink('/etc/hostname', path.join(broken, 'weave', 'train', 'good', 'escape.png'));
    await writeFile(path.join(broken, 'weave', 'test', 'good', 'notes.txt'), 'not an image');
    await writeFile(path.join(broken, 'weave', 'train', 'good', 'corrupt.png'), 'not really a png');
    await writeFile(path.join(broken, 'weave', 'train', 'good', 'huge.png'), Buffer.alloc(UPLOAD_MAX_BYTES + 1));

    const job = await importAndWait({ datasetId, source: { localPath: broken } });
    expect(job.status).toBe('SUCCEEDED');
    const problems = job.errors.map((problem) => [problem.path, problem.code]).sort();
    expect(problems).toEqual(
      [
        [`weave/${withoutMask.imagePath}`, 'MASK_MISSING'],
        [`weave/${withoutImage.maskPath}`, 'IMAGE_MISSING'],
        ['weave/train/good/escape.png', 'FORBIDDEN'],
        ['weave/test/good/notes.txt', 'UNEXPECTED_FILE'],
        ['weave/train/good/corrupt.png', 'INVALID_IMAGE'],
        ['weave/train/good/huge.png', 'IMAGE_TOO_LARGE'],
      ].sort(),
    );
    // Two generated images could not be imported; the link, the corrupt and the huge file were refused.
    expect(job).toMatchObject({ total: generated.imageCount + 1, imported: generated.imageCount - 2, errorCount: 6 });
    expect(job.processed).toBe(job.total);
  });
});

describe('a job survives the death of its server', () => {
  let big: GeneratedCategorySummary;

  beforeAll(async () => {
    big = await writeMvtecCategory({
      outDir: path.join(root, 'big'),
      category: 'metal_plate',
      seed: 11,
      size: 96,
      trainCount: 110,
      testGoodCount: 20,
      testDefectCount: 4,
    });
  });

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    test(`${signal} mid-import: a new server on the same data finishes it with exact counts and no duplicates`, async () => {
      const first = await startTestServer({ env: { IMPORT_ROOTS: root } });
      let second: TestServer | undefined;
      try {
        const admin = new GraphQLTestClient(first.url, first.adminKey);
        const datasetId = (
          await admin.data<{ createDataset: { id: string } }>(CREATE_DATASET, { input: { name: `restart ${signal}` } })
        ).createDataset.id;
        const started = await admin.data<{ importMvtecDataset: { id: string } }>(IMPORT, {
          input: { datasetId, source: { localPath: path.join(root, 'big') } },
        });
        const jobId = started.importMvtecDataset.id;
        const seen = await follow(admin, jobId, (state) => state.processed > 0 || FINAL.has(state.status));
        const midway = seen[seen.length - 1] as JobState;
        expect(midway.status).toBe('RUNNING');
        expect(midway.processed).toBeLessThan(big.imageCount);
        if (signal === 'SIGKILL') first.child.kill('SIGKILL');
        await first.stop();

        second = await startTestServer({
          env: { IMPORT_ROOTS: root },
          databaseUrl: first.databaseUrl,
          bucket: first.bucket,
          adminKey: first.adminKey,
        });
        const client = new GraphQLTestClient(second.url, second.adminKey);
        const states = await follow(client, jobId);
        const final = states[states.length - 1] as JobState;
        expect(final).toMatchObject({
          status: 'SUCCEEDED',
          total: big.imageCount,
          processed: big.imageCount,
          imported: big.imageCount,
          duplicates: 0,
          errorCount: 0,
          attempts: 2,
        });
        const secondProbe = new StorageProbe(second);
        try {
          expect(await secondProbe.count('SELECT count(*) FROM image')).toBe(big.imageCount);
          expect(await secondProbe.count('SELECT count(DISTINCT sha256) FROM image')).toBe(big.imageCount);
          // One object per row: what the killed run wrote for images it did not record, the resumed job deleted.
          const { rows } = await secondProbe.query<{ object_key: string }>('SELECT object_key FROM image');
          expect(await secondProbe.keys('images/')).toEqual(rows.map((row) => row.object_key).sort());
        } finally {
          await secondProbe.close();
        }
      } finally {
        await second?.stop();
        await first.stop();
      }
    });
  }
});

describe('job workers in their own process (npm run worker)', () => {
  test('an API server without workers queues the job; a worker process runs it; deletes wait for it', async () => {
    const api = await startTestServer({ env: { IMPORT_ROOTS: root, JOB_WORKERS_IN_PROCESS: 'false' } });
    const worker = spawn(process.execPath, [path.join(__dirname, '..', '..', 'dist', 'src', 'worker.js')], {
      env: api.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    worker.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    worker.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => worker.once('exit', resolve));
    try {
      const admin = new GraphQLTestClient(api.url, api.adminKey);
      const datasetId = (
        await admin.data<{ createDataset: { id: string } }>(CREATE_DATASET, { input: { name: 'worker import' } })
      ).createDataset.id;
      const started = await admin.data<{ importMvtecDataset: { id: string; status: string } }>(IMPORT, {
        input: { datasetId, source: { localPath: path.join(root, 'mvtec') } },
      });
      expect(started.importMvtecDataset.status).toBe('QUEUED');
      expect(await admin.errorCode('mutation($id: ID!) { deleteDataset(id: $id) }', { id: datasetId })).toBe(
        'CONFLICT',
      );

      await new Promise<void>((resolve, reject) => {
        worker.stdout.on('data', () => /^Worker: running/m.test(output) && resolve());
        void exited.then((code) => reject(new Error(`worker exited (${code}):\n${output}`)));
      });
      const states = await follow(admin, started.importMvtecDataset.id);
      expect(states[states.length - 1]).toMatchObject({ status: 'SUCCEEDED', imported: generated.imageCount });
      await admin.data('mutation($id: ID!) { deleteDataset(id: $id) }', { id: datasetId });
    } finally {
      worker.kill('SIGTERM');
      expect(await exited).toBe(0);
      await api.stop();
    }
  });

  test('subscribing to an unknown job is NOT_FOUND; without a key UNAUTHENTICATED', async () => {
    for (const [client, code] of [
      [clients.viewer, 'NOT_FOUND'],
      [new GraphQLTestClient(server.url), 'UNAUTHENTICATED'],
    ] as const) {
      const websocket = client.websocket();
      const recorder = new SubscriptionRecorder(websocket, PROGRESS, { id: '3f1c1f5e-0000-4000-8000-000000000000' });
      try {
        await recorder.waitFor((results) => results.length > 0 || recorder.done);
        // Without a key the socket itself is refused at connection_init: closed with 4401 UNAUTHENTICATED.
        const refusal = recorder.results[0]?.errors ?? recorder.error;
        const closed = refusal as { code?: number; reason?: string };
        expect(JSON.stringify(refusal) + (closed.reason ?? '')).toContain(code);
      } finally {
        recorder.dispose();
        await websocket.dispose();
      }
    }
  });
});
