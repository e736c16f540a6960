// Evaluations run by separate worker processes (`npm run worker`) next to a server without
// job workers: progress streams across processes, a worker killed mid-evaluation leaves the
// job to a second worker that finishes it without counting an image twice and with the same
// metrics as an uninterrupted run, and cancelled evaluations stop.
//
// The test holds the point where a worker is "mid-evaluation" deterministically: before the
// worker starts, it inserts (without committing) the result row of the first image of the
// second batch, so the worker commits batch 1, stores batch 2's maps, then waits on that row.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import {
  createClients,
  eventually,
  registerModel,
  StorageProbe,
  uploadImages,
  type Clients,
  type ModelVersion,
  type SampleFile,
} from '../inspection/helpers';
import { SubscriptionRecorder, type GraphQLResponse } from '../support/graphql-client';
import { uniqueName } from '../support/resources';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  EVALUATION_FIELDS,
  EVALUATION_PROGRESS,
  evaluationModelPath,
  FINAL_STATUSES,
  followEvaluation,
  generateCategory,
  recomputeFromStorage,
  reportedMetrics,
  REPOSITORY_ROOT,
  startEvaluation,
  type Evaluation,
} from './helpers';

const BATCH_SIZE = 4;
const WORKER = path.join(REPOSITORY_ROOT, 'dist', 'src', 'worker.js');

let root: string;
let server: TestServer;
let clients: Clients;
let probe: StorageProbe;
let model: ModelVersion;
let categoryId: string;
let snapshotId: string;
/** TEST images of the snapshot in the order a runner takes them. */
let runOrder: string[];
const workers: ChildProcess[] = [];

interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

async function startWorker(): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [WORKER], {
    cwd: REPOSITORY_ROOT,
    env: server.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push(child);
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Worker: running job workers')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    void exited.then(({ code, signal }) =>
      reject(new Error(`worker exited (code ${code}, signal ${signal}) before it was ready:\n${output}`)),
    );
  });
  return { child, exited, output: () => output };
}

/** An uncommitted result row for (evaluation, image): a runner upserting it waits until it is rolled back. */
async function holdResultRow(evaluationId: string, imageId: string): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: server.databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query(
    `INSERT INTO evaluation_image_result (evaluation_id, image_id, score, score_rule, map_object_key) VALUES ($1, $2, 0, 'held by the test', 'none')`,
    [evaluationId, imageId],
  );
  return {
    async release() {
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}

/** Resolves once some session waits for a row lock on evaluation_image_result (the runner, on the held row). */
async function runnerWaitsOnHeldRow(): Promise<void> {
  await eventually(async () => {
    const waiting = await probe.count(
      `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO evaluation_image_result%'`,
    );
    if (waiting === 0) throw new Error('no runner is waiting on the held row yet');
  }, 120_000);
}

/** Resolves once no process holds the evaluation's runner lock (its runner has stopped). */
async function runnerStopped(evaluationId: string): Promise<void> {
  await eventually(async () => {
    const { rows } = await probe.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock(hashtextextended('evaluation:' || $1, 0)) AS locked`,
      [evaluationId],
    );
    if (!rows[0]?.locked) throw new Error('a runner still holds the evaluation');
    await probe.query(`SELECT pg_advisory_unlock(hashtextextended('evaluation:' || $1, 0))`, [evaluationId]);
  }, 120_000);
}

function follow(evaluationId: string): {
  recorder: SubscriptionRecorder<{ evaluationProgress: Evaluation }>;
  close(): Promise<void>;
} {
  const websocket = clients.viewer.websocket();
  const recorder = new SubscriptionRecorder<{ evaluationProgress: Evaluation }>(websocket, EVALUATION_PROGRESS, {
    id: evaluationId,
  });
  return {
    recorder,
    async close() {
      recorder.dispose();
      await websocket.dispose();
    },
  };
}

const states = (results: GraphQLResponse<{ evaluationProgress: Evaluation }>[]): Evaluation[] =>
  results.flatMap((result) => (result.data ? [result.data.evaluationProgress] : []));

async function evaluation(id: string): Promise<Evaluation> {
  return (
    await clients.viewer.data<{ evaluation: Evaluation }>(
      `query($id: ID!) { evaluation(id: $id) { ${EVALUATION_FIELDS} } }`,
      { id },
    )
  ).evaluation;
}

beforeAll(async () => {
  root = path.join(process.env.TEST_TMP_DIR ?? '/tmp', uniqueName('evaluation-workers-'));
  await mkdir(root, { recursive: true });
  server = await startTestServer({
    env: {
      JOB_WORKERS_IN_PROCESS: 'false',
      EVALUATION_BATCH_SIZE: String(BATCH_SIZE),
      EVALUATION_RECOVERY_INTERVAL_SECONDS: '1',
    },
  });
  clients = await createClients(server);
  probe = new StorageProbe(server);
  const modelBytes = await readFile(evaluationModelPath());
  // Uploaded through presigned URLs rather than imported: no job may run before the test says so.
  const generated = await generateCategory(path.join(root, 'mvtec'), modelBytes, {
    testGoodCount: 5,
    testDefectCount: 2,
  });
  const dataset = await clients.labeler.data<{ createDataset: { id: string } }>(
    'mutation { createDataset(input: { name: "evaluation workers" }) { id } }',
  );
  const category = await clients.labeler.data<{ createCategory: { id: string } }>(
    'mutation($id: ID!, $name: String!) { createCategory(input: { datasetId: $id, name: $name }) { id } }',
    {
      id: dataset.createDataset.id,
      name: generated.category,
    },
  );
  categoryId = category.createCategory.id;
  const files: SampleFile[] = await Promise.all(
    generated.files.map(async (file) => ({
      bytes: await readFile(path.join(generated.categoryDir, file.imagePath)),
      mask: file.maskPath ? await readFile(path.join(generated.categoryDir, file.maskPath)) : null,
      split: file.split === 'train' ? ('TRAIN' as const) : ('TEST' as const),
      defectType: file.label === 'good' ? null : file.label,
    })),
  );
  await uploadImages(clients.labeler, categoryId, files);
  model = await registerModel(clients.admin, categoryId, 'evaluated', modelBytes);
  const snapshot = await clients.labeler.data<{ createSnapshot: { id: string } }>(
    'mutation($id: ID!) { createSnapshot(categoryId: $id, name: "for the workers") { id } }',
    { id: categoryId },
  );
  snapshotId = snapshot.createSnapshot.id;
  const ordered = await probe.query<{ id: string }>(
    `SELECT image.id FROM snapshot_image member JOIN image ON image.id = member.image_id
      WHERE member.snapshot_id = $1 AND image.split = 'TEST' ORDER BY image.defect_type ASC NULLS FIRST, image.id ASC`,
    [snapshotId],
  );
  runOrder = ordered.rows.map((row) => row.id);
  expect(runOrder.length).toBeGreaterThan(2 * BATCH_SIZE);
});

afterAll(async () => {
  for (const child of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await probe?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

let cancelledWhileQueued: Evaluation;
let secondWorker: WorkerProcess;

test('without a worker an evaluation stays QUEUED; cancelled then, no worker ever starts it', async () => {
  const started = await startEvaluation(clients.labeler, { modelId: model.id, categoryId, snapshotId });
  expect(started.status).toBe('QUEUED');
  const cancelled = await clients.labeler.data<{ cancelEvaluation: Evaluation }>(
    `mutation($id: ID!) { cancelEvaluation(id: $id) { ${EVALUATION_FIELDS} } }`,
    { id: started.id },
  );
  expect(cancelled.cancelEvaluation).toMatchObject({ id: started.id, status: 'CANCELLED', processed: 0, attempts: 0 });
  expect(cancelled.cancelEvaluation.finishedAt).not.toBeNull();
  cancelledWhileQueued = cancelled.cancelEvaluation;
});

test('a worker killed mid-evaluation: a second worker finishes it, no image counted twice, with the metrics of an uninterrupted run', async () => {
  const interrupted = await startEvaluation(clients.labeler, { modelId: model.id, categoryId, snapshotId });
  const held = await holdResultRow(interrupted.id, runOrder[BATCH_SIZE] as string);
  const progress = follow(interrupted.id);
  try {
    const first = await startWorker();
    // Progress from the worker process reaches the server's subscribers.
    await progress.recorder.waitFor(
      (results) => states(results).some((state) => state.status === 'RUNNING' && state.processed === BATCH_SIZE),
      120_000,
    );
    await runnerWaitsOnHeldRow();
    // Batch 2's maps are stored, its rows are not: the worker dies between the two.
    expect(await probe.keys(`evaluations/${interrupted.id}/maps/`)).toHaveLength(2 * BATCH_SIZE);
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await held.release();
    expect(await evaluation(interrupted.id)).toMatchObject({ status: 'RUNNING', processed: BATCH_SIZE, attempts: 1 });

    secondWorker = await startWorker();
    const results = await progress.recorder.waitFor(
      (all) => states(all).some((state) => FINAL_STATUSES.has(state.status)),
      240_000,
    );
    const seen = states(results);
    const final = seen[seen.length - 1] as Evaluation;
    expect(final).toMatchObject({
      status: 'SUCCEEDED',
      processed: runOrder.length,
      total: runOrder.length,
      attempts: 2,
      error: null,
    });
    expect(
      seen.some((state) => state.status === 'RUNNING' && state.processed > 0 && state.processed < runOrder.length),
    ).toBe(true);
    expect(
      await probe.count('SELECT count(*) FROM evaluation_image_result WHERE evaluation_id = $1', [interrupted.id]),
    ).toBe(runOrder.length);
    expect(await probe.keys(`evaluations/${interrupted.id}/maps/`)).toHaveLength(runOrder.length);

    const uninterruptedStates = await followEvaluation(
      clients.viewer,
      (await startEvaluation(clients.labeler, { modelId: model.id, categoryId, snapshotId })).id,
    );
    const uninterrupted = uninterruptedStates[uninterruptedStates.length - 1] as Evaluation;
    expect(uninterrupted).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    // Exactly equal, curves included.
    expect(reportedMetrics(final)).toEqual(reportedMetrics(uninterrupted));
    expect(final.rocCurve).toEqual(uninterrupted.rocCurve);
    expect(final.proCurve).toEqual(uninterrupted.proCurve);
    expect(reportedMetrics(final)).toEqual(
      (await recomputeFromStorage(probe, interrupted.id, final.auproLimit)).metrics,
    );
  } finally {
    await progress.close();
  }
});

test('cancelling a running evaluation stops its worker at the batch in flight; the job is not retried', async () => {
  const running = await startEvaluation(clients.labeler, { modelId: model.id, categoryId, snapshotId });
  const held = await holdResultRow(running.id, runOrder[BATCH_SIZE] as string);
  const progress = follow(running.id);
  try {
    await progress.recorder.waitFor(
      (results) => states(results).some((state) => state.status === 'RUNNING' && state.processed === BATCH_SIZE),
      120_000,
    );
    await runnerWaitsOnHeldRow();
    const cancelled = await clients.labeler.data<{ cancelEvaluation: Evaluation }>(
      'mutation($id: ID!) { cancelEvaluation(id: $id) { id status processed } }',
      { id: running.id },
    );
    expect(cancelled.cancelEvaluation).toEqual({ id: running.id, status: 'CANCELLED', processed: BATCH_SIZE });
    await held.release();
    const results = await progress.recorder.waitFor((all) =>
      states(all).some((state) => FINAL_STATUSES.has(state.status)),
    );
    expect(states(results)[states(results).length - 1]?.status).toBe('CANCELLED');
    await runnerStopped(running.id);
  } finally {
    await progress.close();
  }
  // The batch in flight was not recorded after the cancel, and nothing ran after it.
  expect(await evaluation(running.id)).toMatchObject({
    status: 'CANCELLED',
    processed: BATCH_SIZE,
    imageAuroc: null,
    attempts: 1,
  });
  expect(await probe.count('SELECT count(*) FROM evaluation_image_result WHERE evaluation_id = $1', [running.id])).toBe(
    BATCH_SIZE,
  );
  expect(
    await probe.count(
      `SELECT count(*) FROM pgboss.job WHERE name = 'model-evaluation' AND data->>'evaluationId' = $1 AND state <> 'completed'`,
      [running.id],
    ),
  ).toBe(0);
});

test('the evaluation cancelled while QUEUED was delivered to a worker, which left it alone', async () => {
  expect(
    await probe.count(
      `SELECT count(*) FROM pgboss.job WHERE name = 'model-evaluation' AND data->>'evaluationId' = $1 AND state = 'completed'`,
      [cancelledWhileQueued.id],
    ),
  ).toBe(1);
  expect(await evaluation(cancelledWhileQueued.id)).toMatchObject({
    status: 'CANCELLED',
    processed: 0,
    attempts: 0,
    startedAt: null,
  });
});

test('a worker stops cleanly on SIGTERM', async () => {
  secondWorker.child.kill('SIGTERM');
  expect(await secondWorker.exited).toEqual({ code: 0, signal: null });
});
