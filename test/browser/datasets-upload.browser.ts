import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import sharp from 'sharp';
import { launchBrowser, signIn, startConsoleServer, type ConsoleServer } from './support';

let service: ConsoleServer;
let browser: Browser;

beforeAll(async () => {
  [service, browser] = await Promise.all([startConsoleServer(), launchBrowser()]);
});
afterAll(async () => {
  await browser?.close();
  await service?.stop();
});

interface CategoryFacts {
  name: string;
  dataset: { name: string };
  defectTypes: string[];
  total: number;
  trainCount: number;
  testCount: number;
  testGoodCount: number;
  defectiveCount: number;
  activeModel: { name: string; version: number } | null;
}

/** The same fields the pages show, from the API with the same key. */
async function categoryFacts(key: string): Promise<CategoryFacts> {
  const { category } = await service.admin.withKey(key).data<{ category: CategoryFacts }>(
    `query($id: ID!) {
      category(id: $id) {
        name dataset { name } defectTypes
        total: imageCount
        trainCount: imageCount(split: TRAIN) testCount: imageCount(split: TEST)
        testGoodCount: imageCount(split: TEST, good: true) defectiveCount: imageCount(good: false)
        activeModel { name version }
      }
    }`,
    { id: service.demo.categoryId },
  );
  return category;
}

describe('datasets and images, as a VIEWER', () => {
  it('lists the demo dataset with the counts the API gives, and offers no upload', async () => {
    const key = await service.key('VIEWER');
    const facts = await categoryFacts(key);
    const { page, blocked, errors, screenshot } = await signIn(browser, service.server, key, '#/datasets');

    const card = page.locator(`[data-testid=category-card][data-category-id="${service.demo.categoryId}"]`);
    await card.waitFor({ timeout: 30_000 });
    const dataset = page.locator(`[data-testid=dataset][data-dataset-id="${service.demo.datasetId}"]`);
    expect(await dataset.getByRole('heading', { level: 2 }).textContent()).toBe(facts.dataset.name);
    expect(await card.getByRole('heading', { level: 3 }).textContent()).toBe(facts.name);
    expect(await card.getByTestId('count-train').textContent()).toBe(String(facts.trainCount));
    expect(await card.getByTestId('count-test').textContent()).toBe(String(facts.testCount));
    expect(await card.getByTestId('count-test-good').textContent()).toBe(String(facts.testGoodCount));
    expect(await card.getByTestId('count-defective').textContent()).toBe(String(facts.defectiveCount));
    expect(facts.defectTypes.length).toBeGreaterThan(0);
    expect(await card.locator('.datasets-defect-type').allTextContents()).toEqual(facts.defectTypes);
    expect(facts.activeModel).not.toBeNull();
    expect(await card.getByTestId('active-model').textContent()).toContain(
      `${facts.activeModel?.name} v${facts.activeModel?.version}`,
    );

    await screenshot('datasets');

    // No upload for a VIEWER: not in the menu, not on the category page, not by URL.
    expect(await page.locator('.top-bar nav a').allTextContents()).not.toContain('Upload');
    await card.getByRole('link', { name: 'Browse images →' }).click();
    await page.getByTestId('split-count-train').waitFor();
    expect(page.url()).toContain(`#/categories/${service.demo.categoryId}`);
    await page.getByTestId('image-tile').first().waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('upload-link').count()).toBe(0);
    await page.goto(`${service.server.baseUrl}/#/upload?category=${service.demo.categoryId}`);
    await page.getByRole('alert').filter({ hasText: 'needs the LABELER role' }).waitFor();
    expect(await page.locator('input[type=file]').count()).toBe(0);

    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('shows the category’s images page by page on scroll, filters by defect type, and draws a mask on hover', async () => {
    const key = await service.key('VIEWER');
    const facts = await categoryFacts(key);
    const { page, blocked, errors, screenshot } = await signIn(
      browser,
      service.server,
      key,
      `#/categories/${service.demo.categoryId}`,
    );
    const tiles = page.getByTestId('image-tile');

    await page
      .getByTestId('images-total')
      .filter({ hasText: `${facts.total} images match` })
      .waitFor();
    expect(await page.getByTestId('split-count-train').textContent()).toBe(String(facts.trainCount));
    expect(await page.getByTestId('split-count-test').textContent()).toBe(String(facts.testCount));

    // The first page only: the demo has more images than one page holds.
    await tiles.first().waitFor();
    const firstPage = await tiles.count();
    expect(firstPage).toBeGreaterThan(0);
    expect(firstPage).toBeLessThan(facts.total);
    expect(await page.getByTestId('images-sentinel').count()).toBe(1);
    await waitForLoadedImages(page, '[data-testid=image-thumbnail]', 4);
    const caption = (await tiles.first().locator('figcaption').textContent()) ?? '';
    expect(caption).toMatch(/\.png/);
    expect(caption).toMatch(/train|test/);

    // Scrolling to the end of the grid loads the next page, until every image is there.
    await page.getByTestId('images-sentinel').scrollIntoViewIfNeeded();
    await page.waitForFunction(
      (total) => document.querySelectorAll('[data-testid=image-tile]').length === total,
      facts.total,
      { timeout: 30_000 },
    );
    expect(await page.getByTestId('images-sentinel').count()).toBe(0);
    const ids = await tiles.evaluateAll((elements) => elements.map((element) => element.getAttribute('data-image-id')));
    expect(new Set(ids).size).toBe(facts.total);
    await tiles.last().scrollIntoViewIfNeeded();
    await waitForLoadedImage(tiles.last().getByTestId('image-thumbnail'));
    await screenshot('datasets-grid');

    // A defect type: only its images, as many as the API counts.
    const defectType = facts.defectTypes[0] as string;
    const { category } = await service.admin
      .withKey(key)
      .data<{ category: { imageCount: number } }>(
        'query($id: ID!, $d: String) { category(id: $id) { imageCount(defectType: $d) } }',
        { id: service.demo.categoryId, d: defectType },
      );
    expect(category.imageCount).toBeGreaterThan(0);
    await page.getByLabel('Defect type').selectOption(defectType);
    await page.waitForFunction(
      ({ type, count }) => {
        const shown = [...document.querySelectorAll('[data-testid=image-tile]')];
        return shown.length === count && shown.every((tile) => tile.getAttribute('data-defect-type') === type);
      },
      { type: defectType, count: category.imageCount },
      { timeout: 30_000 },
    );
    expect(await page.getByTestId('image-defect-type').allTextContents()).toEqual(
      Array(category.imageCount).fill(defectType),
    );
    expect(await page.getByLabel('Label').inputValue()).toBe('defective');
    expect(page.url()).toContain(`defect=${defectType}`);

    // The mask shows over a defective image only while the pointer is on it.
    const tile = tiles.first();
    const mask = tile.getByTestId('image-mask');
    await waitForLoadedImage(tile.getByTestId('image-thumbnail'));
    await page.mouse.move(0, 0);
    expect(await mask.evaluate((element) => getComputedStyle(element).opacity)).toBe('0');
    await tile.hover();
    const maskHandle = await mask.elementHandle();
    await page.waitForFunction((element) => Number(getComputedStyle(element as Element).opacity) > 0.5, maskHandle);
    await waitForLoadedImage(mask.locator('img'));
    await screenshot('datasets-mask');

    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });
});

describe('uploading normal samples, as a LABELER', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(path.join(os.tmpdir(), 'console-upload-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('stores the valid images, lists the corrupt one with INVALID_IMAGE and skips a non-image', async () => {
    const key = await service.key('LABELER');
    const trainBefore = (await categoryFacts(key)).trainCount;
    const files = {
      'sample-a.png': await noisePng(320, 240),
      'sample-b.png': await noisePng(320, 240),
      // A PNG signature and header, then garbage: named .png, not an image.
      'corrupt.png': Buffer.concat([(await noisePng(64, 64)).subarray(0, 33), randomBytes(4096)]),
      'notes.txt': Buffer.from('not an image, not sent\n'),
    };
    const paths = await Promise.all(
      Object.entries(files).map(async ([name, bytes]) => {
        const file = path.join(folder, name);
        await writeFile(file, bytes);
        return file;
      }),
    );

    // From the category page, its upload link opens the upload page on that category.
    const { page, blocked, errors, screenshot } = await signIn(
      browser,
      service.server,
      key,
      `#/categories/${service.demo.categoryId}`,
    );
    await page.getByTestId('upload-link').click();
    await page.getByRole('heading', { name: 'Upload normal samples' }).waitFor();
    await page.waitForFunction(
      (categoryId) => document.querySelector<HTMLSelectElement>('select[name=category]')?.value === categoryId,
      service.demo.categoryId,
    );

    await page.getByTestId('upload-file-input').setInputFiles(paths);
    const rows = page.getByTestId('upload-row');
    expect(await rows.count()).toBe(4);
    expect(await rows.filter({ hasText: 'notes.txt' }).getAttribute('data-status')).toBe('skipped');
    await page.getByRole('button', { name: 'Upload 3 files' }).click();

    await page
      .getByTestId('upload-summary')
      .filter({ hasText: '2 stored, 1 refused, 1 skipped' })
      .waitFor({ timeout: 60_000 });
    for (const name of ['sample-a.png', 'sample-b.png']) {
      expect(await rows.filter({ hasText: name }).getAttribute('data-status')).toBe('stored');
    }
    const refused = rows.filter({ hasText: 'corrupt.png' });
    expect(await refused.getAttribute('data-status')).toBe('refused');
    expect(await refused.textContent()).toContain('INVALID_IMAGE');
    expect(await rows.filter({ hasText: 'notes.txt' }).getAttribute('data-status')).toBe('skipped');
    await screenshot('upload-result');

    // The API agrees: exactly two more TRAIN images, the two valid files.
    expect((await categoryFacts(key)).trainCount).toBe(trainBefore + 2);
    const { images } = await service.admin.withKey(key).data<{
      images: { edges: Array<{ node: { originalFilename: string; good: boolean } }> };
    }>('query($c: ID!) { images(categoryId: $c, split: TRAIN, first: 2) { edges { node { originalFilename good } } } }', {
      c: service.demo.categoryId,
    });
    expect(images.edges.map(({ node }) => node.originalFilename).sort()).toEqual(['sample-a.png', 'sample-b.png']);
    expect(images.edges.every(({ node }) => node.good)).toBe(true);

    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });
});

/** A PNG of random pixels: every call gives different bytes (no DUPLICATE_IMAGE). */
function noisePng(width: number, height: number): Promise<Buffer> {
  return sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

async function waitForLoadedImage(image: Locator): Promise<void> {
  const handle = await image.elementHandle();
  await image.page().waitForFunction((element) => {
    const img = element as HTMLImageElement;
    return img.complete && img.naturalWidth > 0;
  }, handle);
}

/** The first `count` images matching `selector` have loaded (naturalWidth > 0). */
async function waitForLoadedImages(page: Page, selector: string, count: number): Promise<void> {
  await page.waitForFunction(
    ({ selector, count }) => {
      const images = [...document.querySelectorAll<HTMLImageElement>(selector)].slice(0, count);
      return images.length === count && images.every((img) => img.complete && img.naturalWidth > 0);
    },
    { selector, count },
  );
}
