// The "done when": `npm start` with nothing configured (embedded PostgreSQL and S3, the demo
// seeded), the printed key pasted into the console, and the pages work with nothing but the service.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { embeddedServerEnv, spawnServer, type TestServer } from '../support/test-server';
import { launchBrowser, signIn } from './support';

let server: TestServer;
let browser: Browser;
let dataDir: string;

beforeAll(async () => {
  // Inside TEST_TMP_DIR, which the embedded PostgreSQL's user can enter (see global-setup.mjs).
  dataDir = await mkdtemp(path.join(process.env.TEST_TMP_DIR ?? os.tmpdir(), 'embedded-console-'));
  [server, browser] = await Promise.all([
    spawnServer(await embeddedServerEnv(dataDir), { adminKey: '', databaseUrl: '', bucket: 'inspection' }),
    launchBrowser(),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

test('with the printed admin key: the seeded demo is listed, and a normal sample uploads straight to the embedded S3', async () => {
  const printedKey = /^Admin API key: (\S+)$/m.exec(server.output())?.[1];
  expect(printedKey).toMatch(/^isk_/);
  const { page, blocked, errors } = await signIn(browser, server, printedKey as string, '#/upload');

  await page.getByLabel('Category').selectOption({ label: 'Demo / weave' });
  const sample = path.join(dataDir, 'normal-sample.png');
  const pixels = Buffer.alloc(96 * 64 * 3, 0).map((_, index) => (index * 37) % 251);
  await writeFile(
    sample,
    await sharp(pixels, { raw: { width: 96, height: 64, channels: 3 } })
      .png()
      .toBuffer(),
  );
  await page.getByTestId('upload-file-input').setInputFiles(sample);
  await page.getByRole('button', { name: 'Upload 1 file' }).click();
  await page.getByText('1 stored, 0 refused').waitFor({ timeout: 60_000 });

  expect(blocked).toEqual([]);
  expect(errors).toEqual([]);
});
