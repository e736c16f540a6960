// The evaluations and models pages against the real service: a LABELER starts an evaluation of the
// demo model and follows it to its report, an ADMIN registers a broken ONNX file, re-thresholds the
// demo model and applies the evaluation's F1-max threshold. What the pages show is compared with
// what the API answers.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchBrowser, signIn, startConsoleServer, type ConsoleServer } from './support';

/** The colour CurveChart draws a curve in (#2459d6). */
const CURVE_RGB = [0x24, 0x59, 0xd6] as const;
/** The demo evaluation takes about a second on CPU; this leaves room for a slow, shared machine. */
const EVALUATION_TIMEOUT_MS = 120_000;

let service: ConsoleServer;
let browser: Browser;
let fileDir: string;
/** The evaluation the LABELER starts from the page; the ADMIN applies its threshold. */
let evaluationId: string | undefined;

beforeAll(async () => {
  [service, browser, fileDir] = await Promise.all([
    startConsoleServer(),
    launchBrowser(),
    mkdtemp(path.join(os.tmpdir(), 'evaluations-models-')),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await service?.stop();
  if (fileDir) await rm(fileDir, { recursive: true, force: true });
});

interface ApiEvaluation {
  status: string;
  total: number;
  imageAuroc: number | null;
  pixelAuroc: number | null;
  aupro: number | null;
  imageF1Threshold: number | null;
  perDefect: Array<{ defectType: string; imageCount: number }>;
  rocCurve: Array<{ x: number; y: number }>;
  proCurve: Array<{ x: number; y: number }>;
  falsePositives: { totalCount: number; edges: unknown[] };
  falseNegatives: { totalCount: number; edges: unknown[] };
}

async function apiEvaluationProgress(id: string): Promise<Pick<ApiEvaluation, 'status' | 'total'>> {
  const { evaluation } = await service.admin.data<{ evaluation: Pick<ApiEvaluation, 'status' | 'total'> }>(
    'query($id: ID!) { evaluation(id: $id) { status total } }',
    { id },
  );
  return evaluation;
}

/** A SUCCEEDED evaluation's report, with the first page of its worst false positives and negatives. */
async function apiEvaluation(id: string): Promise<ApiEvaluation> {
  const { evaluation } = await service.admin.data<{ evaluation: ApiEvaluation }>(
    `query($id: ID!) { evaluation(id: $id) {
      status total imageAuroc pixelAuroc aupro imageF1Threshold
      perDefect { defectType imageCount }
      rocCurve { x y }
      proCurve { x y }
      falsePositives: images(misclassified: true, good: true, orderBy: SCORE_DESC, first: 6) { totalCount edges { cursor } }
      falseNegatives: images(misclassified: true, good: false, orderBy: SCORE_ASC, first: 6) { totalCount edges { cursor } }
    } }`,
    { id },
  );
  return evaluation;
}

interface ApiModel {
  id: string;
  name: string;
  status: string;
  failureCode: string | null;
  isActive: boolean;
  threshold: number | null;
}

async function apiModels(): Promise<ApiModel[]> {
  const { models } = await service.admin.data<{ models: { edges: Array<{ node: ApiModel }> } }>(
    'query($c: ID!) { models(categoryId: $c, first: 100) { edges { node { id name status failureCode isActive threshold } } } }',
    { c: service.demo.categoryId },
  );
  return models.edges.map((edge) => edge.node);
}

async function apiModel(id: string): Promise<ApiModel> {
  const model = (await apiModels()).find((candidate) => candidate.id === id);
  if (!model) throw new Error(`no model ${id}`);
  return model;
}

/**
 * Keeps every evaluation runner from recording results until released: a SHARE lock on the results
 * table blocks their inserts (not their reads), so an evaluation stays RUNNING at 0 images for as
 * long as the test needs to see its progress.
 */
async function holdEvaluationResults(databaseUrl: string): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE evaluation_image_result IN SHARE MODE');
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}

async function text(locator: Locator): Promise<string> {
  return ((await locator.textContent()) ?? '').trim();
}

/** The bits of the DOM the page functions below touch (the tests compile without the DOM library). */
interface PixelCanvas {
  width: number;
  height: number;
  getContext(
    kind: '2d',
  ): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}
interface LoadedImage {
  complete: boolean;
  naturalWidth: number;
}

/** Canvas size and how many of its pixels have the curve's colour. */
async function curveCanvas(chart: Locator): Promise<{ width: number; height: number; curvePixels: number }> {
  return chart.locator('canvas').evaluate((element, rgb: readonly number[]) => {
    const canvas = element as unknown as PixelCanvas;
    const context = canvas.getContext('2d');
    if (!context) return { width: canvas.width, height: canvas.height, curvePixels: 0 };
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let curvePixels = 0;
    for (let index = 0; index < data.length; index += 4) {
      const near =
        Math.abs((data[index] ?? 0) - (rgb[0] ?? 0)) < 24 &&
        Math.abs((data[index + 1] ?? 0) - (rgb[1] ?? 0)) < 24 &&
        Math.abs((data[index + 2] ?? 0) - (rgb[2] ?? 0)) < 24;
      if (near) curvePixels += 1;
    }
    return { width: canvas.width, height: canvas.height, curvePixels };
  }, CURVE_RGB);
}

/** naturalWidth of each thumbnail of a misclassified-images gallery, once all have loaded (or failed to). */
async function thumbnailWidths(page: Page, testId: string): Promise<number[]> {
  // A function, not a string: the page's CSP allows no eval.
  await page.waitForFunction(
    (id) =>
      Array.from(document.querySelectorAll<HTMLImageElement>(`[data-testid="${id}"] img`)).every((img) => img.complete),
    testId,
    { timeout: 30_000 },
  );
  return page
    .getByTestId(testId)
    .locator('img')
    .evaluateAll((elements) => elements.map((element) => (element as unknown as LoadedImage).naturalWidth));
}

describe('evaluations page', () => {
  it('lets a LABELER start an evaluation of the demo model, follow its progress, and read a report that matches the API', async () => {
    const { page, blocked, errors, screenshot } = await signIn(
      browser,
      service.server,
      await service.key('LABELER'),
      `#/evaluations?category=${service.demo.categoryId}`,
    );
    const hold = await holdEvaluationResults(service.server.databaseUrl);
    try {
      const form = page.getByRole('form', { name: 'Start an evaluation' });
      const modelSelect = form.getByLabel('Model');
      await modelSelect.locator(`option[value="${service.demo.modelId}"]`).waitFor({ state: 'attached' });
      expect(await modelSelect.inputValue()).toBe(service.demo.modelId);
      await form.getByRole('button', { name: 'Start evaluation' }).click();

      // The report page, while the runner is held: RUNNING at 0 of the snapshot's TEST images.
      const progressBar = page.locator('[data-testid="evaluation-progress"][data-status="RUNNING"]');
      await progressBar.waitFor({ timeout: 60_000 });
      const match = /#\/evaluations\/([0-9a-f-]{36})/.exec(page.url());
      expect(match).not.toBeNull();
      evaluationId = match?.[1] as string;
      const running = await apiEvaluationProgress(evaluationId);
      expect(running.status).toBe('RUNNING');
      expect(running.total).toBeGreaterThan(0);
      expect(await progressBar.getAttribute('max')).toBe(String(running.total));
      expect(await progressBar.getAttribute('value')).toBe('0');
      expect(await text(page.locator('.evaluations-progress-line span'))).toBe(`0 / ${running.total} images`);
      await page.getByRole('button', { name: 'Cancel evaluation' }).waitFor();
      await screenshot('evaluation-progress');
    } finally {
      await hold.release();
    }

    await page.getByTestId('evaluation-report').waitFor({ timeout: EVALUATION_TIMEOUT_MS });
    expect(await page.getByTestId('evaluation-progress').count()).toBe(0);
    expect(await text(page.getByTestId('evaluation-status'))).toBe('SUCCEEDED');
    const api = await apiEvaluation(evaluationId);
    expect(api.status).toBe('SUCCEEDED');

    expect(api.imageAuroc).not.toBeNull();
    expect(await text(page.getByTestId('metric-image-auroc'))).toBe(api.imageAuroc?.toFixed(4));
    expect(await text(page.getByTestId('metric-pixel-auroc'))).toBe(api.pixelAuroc?.toFixed(4));
    expect(await text(page.getByTestId('metric-aupro'))).toBe(api.aupro?.toFixed(4));

    // Both curves drawn by uPlot, with every point of the API's curve.
    for (const [testId, points] of [
      ['roc-curve', api.rocCurve],
      ['pro-curve', api.proCurve],
    ] as const) {
      const chart = page.getByTestId(testId);
      expect(points.length).toBeGreaterThan(1);
      expect(await chart.getAttribute('data-points')).toBe(String(points.length));
      const canvas = await curveCanvas(chart);
      expect(canvas.width).toBeGreaterThan(0);
      expect(canvas.height).toBeGreaterThan(0);
      expect(canvas.curvePixels).toBeGreaterThan(0);
    }

    const defectRows = page.getByTestId('per-defect-row');
    expect(api.perDefect.length).toBeGreaterThan(0);
    expect(await defectRows.count()).toBe(api.perDefect.length);
    expect(await defectRows.locator('td:first-child').allTextContents()).toEqual(
      api.perDefect.map((row) => row.defectType),
    );

    // The worst false positives and negatives: as many as the API lists, each thumbnail loaded.
    for (const [testId, connection] of [
      ['false-positives', api.falsePositives],
      ['false-negatives', api.falseNegatives],
    ] as const) {
      const gallery = page.getByTestId(testId);
      await gallery.waitFor();
      expect(await gallery.getAttribute('data-total')).toBe(String(connection.totalCount));
      expect(await gallery.getByTestId('misclassified-image').count()).toBe(connection.edges.length);
      const widths = await thumbnailWidths(page, testId);
      expect(widths).toHaveLength(connection.edges.length);
      for (const width of widths) expect(width).toBeGreaterThan(0);
    }
    expect(api.falsePositives.totalCount + api.falseNegatives.totalCount).toBeGreaterThan(0);

    // Only an ADMIN may apply the threshold.
    expect(await page.getByRole('button', { name: 'Use this threshold' }).count()).toBe(0);
    await screenshot('evaluation-report');

    // The list shows it too, finished, linking to the report.
    await page.getByRole('link', { name: '← Evaluations' }).click();
    const row = page.locator(`[data-testid="evaluation-row"][data-evaluation-id="${evaluationId}"]`);
    await row.waitFor();
    expect(await text(row.getByTestId('evaluation-status'))).toBe('SUCCEEDED');
    expect(await text(row.locator('td').nth(3))).toBe(api.imageAuroc?.toFixed(4));
    await screenshot('evaluations');
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });
});

describe('models page', () => {
  it('lets an ADMIN see the active demo version, register a broken file (FAILED, INVALID_MODEL), set a threshold and apply an evaluation’s', async () => {
    if (!evaluationId) throw new Error('the evaluations test did not start an evaluation');
    const { page, blocked, errors, screenshot } = await signIn(
      browser,
      service.server,
      await service.key('ADMIN'),
      `#/models?category=${service.demo.categoryId}`,
    );
    const demoRow = page.locator(`[data-testid="model-row"][data-model-id="${service.demo.modelId}"]`);
    await demoRow.waitFor();
    expect(await text(demoRow.getByTestId('model-status'))).toBe('READY');
    await demoRow.getByTestId('model-active').waitFor();

    // Random bytes named bad.onnx: the service stores them and answers a FAILED version.
    const badFile = path.join(fileDir, 'bad.onnx');
    await writeFile(badFile, randomBytes(4096));
    const form = page.getByRole('form', { name: 'Register a model' });
    await form.getByLabel('ONNX file').setInputFiles(badFile);
    expect(await form.getByLabel('Name').inputValue()).toBe('bad');
    await form.getByRole('button', { name: 'Register' }).click();
    const result = page.locator('[data-testid="register-result"][data-status="FAILED"]');
    await result.waitFor({ timeout: 60_000 });
    expect(await text(result)).toContain('INVALID_MODEL');

    const bad = (await apiModels()).find((model) => model.name === 'bad');
    expect(bad).toMatchObject({ status: 'FAILED', failureCode: 'INVALID_MODEL', isActive: false });
    const badRow = page.locator(`[data-testid="model-row"][data-model-id="${bad?.id}"]`);
    await badRow.waitFor();
    expect(await text(badRow.getByTestId('model-status'))).toBe('FAILED');
    expect(await text(badRow.getByTestId('model-failure-code'))).toBe('INVALID_MODEL');
    expect(await badRow.getByRole('button', { name: 'Activate' }).count()).toBe(0);
    await screenshot('models');

    // Set the demo version's threshold by hand…
    const thresholdInput = demoRow.getByTestId('model-threshold-input');
    await thresholdInput.fill('2.5');
    await demoRow.getByRole('button', { name: 'Set' }).click();
    // Once saved and read again, the row tells the proposed threshold apart from the one in use.
    await demoRow.getByText('proposed', { exact: false }).waitFor();
    expect(await thresholdInput.inputValue()).toBe('2.5');
    expect((await apiModel(service.demo.modelId)).threshold).toBe(2.5);

    // …then replace it with the evaluation's F1-max threshold from the report.
    const evaluation = await apiEvaluation(evaluationId);
    expect(evaluation.imageF1Threshold).not.toBeNull();
    await page.goto(`${service.server.baseUrl}/#/evaluations/${evaluationId}`);
    await page.getByRole('button', { name: 'Use this threshold' }).click();
    const applied = page.getByTestId('applied-threshold');
    await applied.waitFor();
    const expected = evaluation.imageF1Threshold?.toPrecision(4) ?? '';
    expect(await text(applied)).toContain(expected);
    expect((await apiModel(service.demo.modelId)).threshold).toBe(evaluation.imageF1Threshold);
    await page.locator('[data-testid="model-threshold"]', { hasText: expected }).waitFor();
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });
});
