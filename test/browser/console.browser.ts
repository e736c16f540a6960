import type { Browser, Page } from 'playwright-core';
import { launchBrowser, openPage, signIn, startConsoleServer, type ConsoleServer } from './support';

let service: ConsoleServer;
let browser: Browser;

beforeAll(async () => {
  [service, browser] = await Promise.all([startConsoleServer(), launchBrowser()]);
});
afterAll(async () => {
  await browser?.close();
  await service?.stop();
});

describe('sign-in', () => {
  it('refuses an unknown key with the service’s code, and shows an ADMIN every page', async () => {
    const { page, blocked, errors, screenshot } = await openPage(browser, service.server);
    await page.getByLabel('API key').fill('isk_not-a-key-of-this-service');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectText(page.getByRole('alert'), 'UNAUTHENTICATED');

    await page.getByLabel('API key').fill(service.server.adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('role').waitFor();
    expect(await page.getByTestId('role').textContent()).toBe('ADMIN');
    const nav = await page.locator('.top-bar nav a').allTextContents();
    expect(nav).toEqual(['Datasets', 'Upload', 'Inspect', 'Live feed', 'Evaluations', 'Models']);
    await screenshot('sign-in-admin');
    // The key survives a reload of the tab (sessionStorage), and signing out forgets it.
    await page.reload();
    await page.getByTestId('role').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    await page.reload();
    await page.getByLabel('API key').waitFor();
    expect(blocked).toEqual([]);
    expect(errors.filter((line) => !line.includes('401'))).toEqual([]);
  });

  it('hides what a VIEWER may not do: no Upload or Inspect page, not even by URL', async () => {
    const { page, blocked, errors, screenshot } = await signIn(browser, service.server, await service.key('VIEWER'));
    expect(await page.getByTestId('role').textContent()).toBe('VIEWER');
    const nav = await page.locator('.top-bar nav a').allTextContents();
    expect(nav).toEqual(['Datasets', 'Live feed', 'Evaluations', 'Models']);
    await page.goto(`${service.server.baseUrl}/#/upload`);
    await expectText(page.getByRole('alert'), 'needs the LABELER role');
    expect(await page.locator('input[type=file]').count()).toBe(0);
    await screenshot('viewer-upload-refused');
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });
});

describe('GraphiQL', () => {
  it('loads at /graphiql with no network beyond the service; a key typed in its headers runs a query and a live subscription', async () => {
    const { page, blocked, errors, screenshot } = await openPage(browser, service.server, '/graphiql');
    await page.locator('.graphiql-container').waitFor();
    const labelerKey = await service.key('LABELER');

    await page.getByRole('button', { name: 'Headers' }).click();
    await replaceEditorText(
      page,
      '.graphiql-editor-tool .graphiql-editor',
      `{ "Authorization": "Bearer ${labelerKey}" }`,
    );
    await page.getByRole('button', { name: /re-fetch graphql schema/i }).click();

    await replaceEditorText(page, '.graphiql-query-editor', '{ viewer { role name } }');
    await page.getByRole('button', { name: /execute query/i }).click();
    await expectText(page.locator('.graphiql-response'), '"LABELER"');

    // A subscription over graphql-ws with the same header: each inspection made elsewhere arrives.
    const { images } = await service.admin.data<{ images: { edges: Array<{ node: { id: string } }> } }>(
      'query($c: ID!) { images(categoryId: $c, first: 1) { edges { node { id } } } }',
      { c: service.demo.categoryId },
    );
    const imageId = images.edges[0]?.node.id;
    await replaceEditorText(
      page,
      '.graphiql-query-editor',
      `subscription { inspectionCreated(categoryId: "${service.demo.categoryId}") { id score } }`,
    );
    await page.getByRole('button', { name: /execute query/i }).click();
    // The subscription starts asynchronously: inspect until one arrives.
    const madeHere: string[] = [];
    for (let attempt = 0; attempt < 30; attempt++) {
      const { inspect } = await service.admin.data<{ inspect: { id: string } }>(
        'mutation($i: InspectInput!) { inspect(input: $i) { id } }',
        { i: { categoryId: service.demo.categoryId, imageId } },
      );
      madeHere.push(inspect.id);
      const shown = await page.locator('.graphiql-response').textContent();
      if (shown?.includes('inspectionCreated')) break;
      await page.waitForTimeout(1000);
    }
    const response = (await page.locator('.graphiql-response').textContent()) ?? '';
    expect(response).toContain('"inspectionCreated"');
    expect(madeHere.some((id) => response.includes(`"${id}"`))).toBe(true);
    expect(response).toMatch(/"score":\s*\d/);
    await screenshot('graphiql');

    expect(blocked).toEqual([]);
    // Before the key is typed, loading the schema is refused (introspection needs a key here).
    expect(errors.filter((line) => !line.includes('status of 401'))).toEqual([]);
  });

  it('starts with the console’s key in its headers when opened from a signed-in tab', async () => {
    const { page, errors } = await signIn(browser, service.server, await service.key('VIEWER'));
    await page.goto(`${service.server.baseUrl}/graphiql`);
    await replaceEditorText(page, '.graphiql-query-editor', '{ viewer { role } }');
    await page.getByRole('button', { name: /execute query/i }).click();
    await expectText(page.locator('.graphiql-response'), '"VIEWER"');
    expect(errors).toEqual([]);
  });
});

/** Replaces a Monaco editor's text the way a user would: click in it, select all, type. */
async function replaceEditorText(page: Page, editor: string, text: string): Promise<void> {
  await page.locator(`${editor} .monaco-editor:visible`).first().click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // insertText: no auto-closed brackets or quotes added to what is typed.
  await page.keyboard.insertText(text);
}

async function expectText(locator: import('playwright-core').Locator, text: string): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor({ timeout: 15_000 });
}
