import type { Browser } from 'playwright-core';
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

test('the live feed says when its connection is lost, reconnects by itself when the service is back, and shows what is made then', async () => {
  const { page, blocked, screenshot } = await signIn(
    browser,
    service.server,
    await service.key('VIEWER'),
    `#/live?category=${service.demo.categoryId}`,
  );
  const status = page.getByTestId('live-status');
  await page.locator('[data-testid=live-status][data-state=live]').waitFor();

  // Every state the indicator takes, recorded in the page.
  await status.evaluate((element) => {
    const seen: string[] = [];
    (window as unknown as { seenStates: string[] }).seenStates = seen;
    new MutationObserver(() => seen.push(element.getAttribute('data-state') ?? '')).observe(element, {
      attributes: true,
    });
  });

  await service.restart();
  // graphql-ws retries with a growing random delay (about 1 s, 2 s, 4 s, …): the page shows it.
  await page.locator('[data-testid=live-status][data-state=live]').waitFor({ timeout: 60_000 });
  const seen = await page.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates);
  expect(seen).toContain('reconnecting');
  expect(seen.at(-1)).toBe('live');
  await screenshot('live-feed-reconnected');

  // The subscription stands again: an inspection made by another client now appears.
  const { images } = await service.admin.data<{ images: { edges: Array<{ node: { id: string } }> } }>(
    'query($c: ID!) { images(categoryId: $c, first: 1) { edges { node { id } } } }',
    { c: service.demo.categoryId },
  );
  let shown = false;
  // The socket may be up a moment before the subscription is sent again: inspect until one shows.
  for (let attempt = 0; attempt < 20 && !shown; attempt++) {
    const { inspect } = await service.admin.data<{ inspect: { id: string } }>(
      'mutation($i: InspectInput!) { inspect(input: $i) { id } }',
      { i: { categoryId: service.demo.categoryId, imageId: images.edges[0]?.node.id } },
    );
    shown = await page
      .locator(`[data-inspection-id="${inspect.id}"]`)
      .waitFor({ timeout: 2_000 })
      .then(() => true)
      .catch(() => false);
  }
  expect(shown).toBe(true);
  // (The failed websocket attempts while the service was down are logged by Chromium as errors.)
  expect(blocked).toEqual([]);
});
