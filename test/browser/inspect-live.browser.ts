import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { PNG_SIGNATURE } from '../support/png';
import { launchBrowser, signIn, startConsoleServer, type ConsoleServer } from './support';

let service: ConsoleServer;
let browser: Browser;
let tempDir: string;
/** Demo TEST images the demo model judges as their labels say (it misses some defects, flags some good ones). */
let defective: DemoImage;
let normal: DemoImage;

beforeAll(async () => {
  [service, browser, tempDir] = await Promise.all([
    startConsoleServer(),
    launchBrowser(),
    mkdtemp(path.join(os.tmpdir(), 'inspect-live-')),
  ]);
  defective = await firstJudged(await demoTestImages(false), (inspection) => inspection.regions.length > 0);
  normal = await firstJudged(await demoTestImages(true), (inspection) => !inspection.isAnomalous);
});
afterAll(async () => {
  await browser?.close();
  await service?.stop();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

interface DemoImage {
  id: string;
  url: string;
  originalFilename: string;
}

interface ApiInspection {
  id: string;
  score: number;
  threshold: number;
  normalizedScore: number;
  isAnomalous: boolean;
  latencyMs: number;
  regions: Array<{ x: number; y: number; width: number; height: number; area: number }>;
}

const INSPECTION_FIELDS = 'id score threshold normalizedScore isAnomalous latencyMs regions { x y width height area }';

/** As the console shows scores and timings (console/src/ui/format.ts). */
const shownScore = (value: number) => value.toPrecision(4);
const shownMetric = (value: number) => value.toFixed(4);
const shownMilliseconds = (value: number) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;

async function demoTestImages(good: boolean): Promise<DemoImage[]> {
  const { images } = await service.admin.data<{ images: { edges: Array<{ node: DemoImage }> } }>(
    `query($categoryId: ID!, $good: Boolean!) {
      images(categoryId: $categoryId, split: TEST, good: $good, first: 20) { edges { node { id url originalFilename } } }
    }`,
    { categoryId: service.demo.categoryId, good },
  );
  return images.edges.map((edge) => edge.node);
}

/** The first image whose inspection (through the API, before any page is open) satisfies `wanted`. */
async function firstJudged(images: DemoImage[], wanted: (inspection: ApiInspection) => boolean): Promise<DemoImage> {
  for (const image of images) if (wanted(await inspectFromApi(image.id))) return image;
  throw new Error(`no demo image satisfies ${wanted.toString()}`);
}

/** Inspects dataset images from the test process (another client than the browser). */
async function inspectFromApi(imageId: string): Promise<ApiInspection> {
  const { inspect } = await service.admin.data<{ inspect: ApiInspection }>(
    `mutation($input: InspectInput!) { inspect(input: $input) { ${INSPECTION_FIELDS} } }`,
    { input: { categoryId: service.demo.categoryId, imageId } },
  );
  return inspect;
}

async function inspectionFromApi(id: string): Promise<ApiInspection> {
  const { inspection } = await service.admin.data<{ inspection: ApiInspection | null }>(
    `query($id: ID!) { inspection(id: $id) { ${INSPECTION_FIELDS} } }`,
    { id },
  );
  if (!inspection) throw new Error(`no inspection ${id}`);
  return inspection;
}

/** Resolves with the image's natural width once it has loaded (0 if it failed). */
function loadedNaturalWidth(image: Locator): Promise<number> {
  return image.evaluate((element) => {
    const img = element as unknown as { naturalWidth: number; decode(): Promise<void> };
    return img.decode().then(
      () => img.naturalWidth,
      () => 0,
    );
  });
}

async function waitUntil(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** graphql-ws messages the page sent (to know when the page has asked the service for a subscription). */
function recordSentFrames(page: Page): string[] {
  const frames: string[] = [];
  page.on('websocket', (socket) => socket.on('framesent', ({ payload }) => frames.push(String(payload))));
  return frames;
}

function subscribedWith(frames: string[], variables: { categoryId: string; onlyAnomalous: boolean }): boolean {
  return frames.some((frame) => {
    const message = JSON.parse(frame) as {
      type: string;
      payload?: { query?: string; variables?: { categoryId?: string; onlyAnomalous?: boolean } };
    };
    return (
      message.type === 'subscribe' &&
      message.payload?.query?.includes('inspectionCreated') === true &&
      message.payload.variables?.categoryId === variables.categoryId &&
      message.payload.variables.onlyAnomalous === variables.onlyAnomalous
    );
  });
}

describe('inspect page', () => {
  it('inspects an uploaded demo image: score and threshold as stored, overlay loaded, one box per region; shows a refused image’s code', async () => {
    const download = await fetch(defective.url);
    expect(download.status).toBe(200);
    const file = path.join(tempDir, path.basename(defective.originalFilename));
    await writeFile(file, Buffer.from(await download.arrayBuffer()));

    const { createCategory } = await service.admin.data<{ createCategory: { id: string } }>(
      'mutation($datasetId: ID!) { createCategory(input: { datasetId: $datasetId, name: "no-model-yet" }) { id } }',
      { datasetId: service.demo.datasetId },
    );

    const { page, blocked, errors, screenshot } = await signIn(
      browser,
      service.server,
      await service.key('LABELER'),
      `#/inspect?category=${createCategory.id}`,
    );
    // A category without an active model says so, and takes no image.
    await page.getByTestId('inspect-no-model').waitFor();
    expect(await page.getByTestId('inspect-file-input').isDisabled()).toBe(true);

    await page.getByLabel('Category').selectOption(service.demo.categoryId);
    await page.getByTestId('inspect-active-model').waitFor();
    expect(await page.getByTestId('inspect-file-input').isEnabled()).toBe(true);
    expect(await page.getByTestId('inspect-active-model').textContent()).toContain('demo');
    await page.getByTestId('inspect-file-input').setInputFiles(file);

    const result = page.getByTestId('inspect-result');
    await result.waitFor({ timeout: 60_000 });
    const inspectionId = await result.getAttribute('data-inspection-id');
    if (!inspectionId) throw new Error('the result names no inspection');
    const { inspections } = await service.admin.data<{ inspections: { edges: Array<{ node: { id: string } }> } }>(
      'query($categoryId: ID!) { inspections(filter: { categoryId: $categoryId }, first: 1) { edges { node { id } } } }',
      { categoryId: service.demo.categoryId },
    );
    expect(inspections.edges[0]?.node.id).toBe(inspectionId);
    const stored = await inspectionFromApi(inspectionId);

    expect(await page.getByTestId('inspect-score').textContent()).toBe(shownScore(stored.score));
    expect(await page.getByTestId('inspect-threshold').textContent()).toBe(shownScore(stored.threshold));
    expect(await page.getByTestId('inspect-normalized').textContent()).toBe(shownMetric(stored.normalizedScore));
    expect(await page.getByTestId('inspect-latency').textContent()).toBe(shownMilliseconds(stored.latencyMs));
    expect(await page.getByTestId('inspect-round-trip').textContent()).toMatch(/^\d+(\.\d)? ms$/);
    expect(stored.isAnomalous).toBe(true);
    expect(await page.getByTestId('inspect-decision').textContent()).toBe('ANOMALOUS');

    const overlay = page.getByTestId('inspect-image');
    expect(await overlay.getAttribute('data-view')).toBe('overlay');
    expect(await loadedNaturalWidth(overlay)).toBeGreaterThan(0);
    expect(stored.regions.length).toBeGreaterThan(0);
    expect(await page.getByTestId('inspect-region-box').count()).toBe(stored.regions.length);
    const rows = page.getByTestId('inspect-region-row');
    expect(await rows.count()).toBe(stored.regions.length);
    const first = stored.regions[0]!;
    expect((await rows.first().locator('td').allTextContents()).slice(0, 6)).toEqual(
      ['1', first.x, first.y, first.width, first.height, first.area].map(String),
    );
    for (const link of ['inspect-heatmap-link', 'inspect-mask-link', 'inspect-raw-map-link']) {
      const href = await page.getByTestId(link).getAttribute('href');
      const response = await fetch(new URL(href ?? '', service.server.baseUrl));
      expect({ link, status: response.status }).toEqual({ link, status: 200 });
    }
    await screenshot('inspect-result');

    // Bytes that are no image, dropped on the zone: the service's code is shown.
    const dataTransfer = await page.evaluateHandle(
      ({ bytes, name }) => {
        const browserGlobals = globalThis as unknown as {
          DataTransfer: new () => { items: { add(file: unknown): void } };
          File: new (parts: unknown[], name: string, options: { type: string }) => unknown;
        };
        const transfer = new browserGlobals.DataTransfer();
        transfer.items.add(new browserGlobals.File([new Uint8Array(bytes)], name, { type: 'image/png' }));
        return transfer;
      },
      { bytes: [...Buffer.concat([PNG_SIGNATURE, Buffer.from('no image data')])], name: 'broken.png' },
    );
    await page.getByTestId('inspect-drop-zone').dispatchEvent('drop', { dataTransfer });
    await page.getByTestId('inspect-failed').filter({ hasText: 'INVALID_IMAGE' }).waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('inspect-failed').textContent()).toContain('broken.png');

    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });
});

describe('live feed', () => {
  it('shows inspections made by another client at the top as they happen, and only anomalous ones when asked', async () => {
    const { page, blocked, errors, screenshot } = await signIn(
      browser,
      service.server,
      await service.key('VIEWER'),
      '#/live',
    );
    const sent = recordSentFrames(page);
    await page.getByLabel('Category').selectOption(service.demo.categoryId);
    await waitUntil('the page subscribed to all inspections', () =>
      subscribedWith(sent, { categoryId: service.demo.categoryId, onlyAnomalous: false }),
    );
    await page.locator('[data-testid=live-status][data-state=live]').waitFor();

    const entries = page.getByTestId('live-entry');
    const first = await inspectFromApi(normal.id);
    expect(first.isAnomalous).toBe(false);
    await page.locator(`[data-testid=live-entry][data-inspection-id="${first.id}"]`).waitFor({ timeout: 30_000 });
    expect(await entries.first().getAttribute('data-inspection-id')).toBe(first.id);
    expect(await entries.first().getByTestId('live-entry-score').textContent()).toBe(shownScore(first.score));
    expect(await entries.first().getByTestId('live-entry-decision').textContent()).toBe('NORMAL');
    expect(await loadedNaturalWidth(entries.first().getByTestId('live-entry-thumbnail'))).toBeGreaterThan(0);

    await page.getByLabel('Anomalous only').check();
    await waitUntil('the page subscribed to anomalous inspections only', () =>
      subscribedWith(sent, { categoryId: service.demo.categoryId, onlyAnomalous: true }),
    );
    await page.locator('[data-testid=live-status][data-state=live]').waitFor();

    const good = await inspectFromApi(normal.id);
    const anomalous = await inspectFromApi(defective.id);
    expect([good.isAnomalous, anomalous.isAnomalous]).toEqual([false, true]);
    await page.locator(`[data-testid=live-entry][data-inspection-id="${anomalous.id}"]`).waitFor({ timeout: 30_000 });
    expect(await entries.first().getAttribute('data-inspection-id')).toBe(anomalous.id);
    expect(await entries.first().getByTestId('live-entry-score').textContent()).toBe(shownScore(anomalous.score));
    expect(await loadedNaturalWidth(entries.first().getByTestId('live-entry-thumbnail'))).toBeGreaterThan(0);
    // The good image was inspected first: had it been sent, it would be here by now.
    expect(await page.locator(`[data-testid=live-entry][data-inspection-id="${good.id}"]`).count()).toBe(0);
    expect(new Set(await page.getByTestId('live-entry-decision').allTextContents())).toEqual(new Set(['ANOMALOUS']));
    expect(await page.getByTestId('live-status').getAttribute('data-state')).toBe('live');
    await screenshot('live-feed');

    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });
});
