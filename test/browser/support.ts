// What every browser test needs: the real service with the seeded demo, headless Chromium (Debian's
// `chromium`, installed by .ci/run) driven by playwright-core, and a page that may reach nothing but
// the service and its object store.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { GraphQLTestClient } from '../support/graphql-client';
import { freePort, startTestServer, type TestServer } from '../support/test-server';

export const SCREENSHOT_DIR = path.resolve(__dirname, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export type Role = 'ADMIN' | 'LABELER' | 'VIEWER';

export interface ConsoleServer {
  server: TestServer;
  admin: GraphQLTestClient;
  /** The seeded demo category (a generated MVTec-style category with the bundled model active). */
  demo: { datasetId: string; categoryId: string; categoryName: string; modelId: string };
  /** A new key of that role. */
  key(role: Role): Promise<string>;
  /** Stops the service and starts it again on the same port, database and bucket (open pages stay). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The service with the demo seeded, its bucket open to browser uploads (as in embedded mode). */
export async function startConsoleServer(env: Record<string, string> = {}): Promise<ConsoleServer> {
  // A fixed port, so that a restarted service is where the open pages look for it.
  const serverEnv = { SEED_DEMO: 'true', S3_CORS_ALLOWED_ORIGINS: '*', PORT: String(await freePort()), ...env };
  let server = await startTestServer({ env: serverEnv });
  const admin = new GraphQLTestClient(server.url, server.adminKey);
  const { datasets } = await admin.data<{
    datasets: {
      edges: Array<{
        node: { id: string; categories: Array<{ id: string; name: string; activeModel: { id: string } | null }> };
      }>;
    };
  }>('{ datasets(first: 10) { edges { node { id categories { id name activeModel { id } } } } } }');
  const dataset = datasets.edges[0]?.node;
  const category = dataset?.categories.find((candidate) => candidate.activeModel);
  if (!dataset || !category?.activeModel) throw new Error('the demo was not seeded');
  let keys = 0;
  return {
    get server() {
      return server;
    },
    admin,
    demo: {
      datasetId: dataset.id,
      categoryId: category.id,
      categoryName: category.name,
      modelId: category.activeModel.id,
    },
    key: async (role) => {
      const { createApiKey } = await admin.data<{ createApiKey: { secret: string } }>(
        'mutation($name: String!, $role: Role!) { createApiKey(name: $name, role: $role) { secret } }',
        { name: `browser-${role.toLowerCase()}-${++keys}`, role },
      );
      return createApiKey.secret;
    },
    restart: async () => {
      const { databaseUrl, bucket, adminKey } = server;
      await server.stop();
      server = await startTestServer({ env: serverEnv, databaseUrl, bucket, adminKey });
    },
    stop: async () => {
      await server.stop();
    },
  };
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

export interface ConsolePage {
  page: Page;
  context: BrowserContext;
  /** Requests to anything but the service and its object store (aborted; a test expects none). */
  blocked: string[];
  /** Uncaught page errors and console.error lines (a test expects none). */
  errors: string[];
  screenshot(name: string): Promise<string>;
}

function isLocal(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'data:' || protocol === 'blob:') return true;
  return hostname === '127.0.0.1' || hostname === 'localhost';
}

/** A fresh browser context (own sessionStorage) on `path` of the service. */
export async function openPage(browser: Browser, server: TestServer, path_ = '/'): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  const blocked: string[] = [];
  const errors: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console.error: ${message.text()}`);
  });
  await page.goto(`${server.baseUrl}${path_}`);
  return {
    page,
    context,
    blocked,
    errors,
    screenshot: async (name) => {
      mkdirSync(SCREENSHOT_DIR, { recursive: true });
      const file = path.join(SCREENSHOT_DIR, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
  };
}

/** Opens the console and signs in with `key`; resolves once the role badge shows. */
export async function signIn(browser: Browser, server: TestServer, key: string, hash = ''): Promise<ConsolePage> {
  const consolePage = await openPage(browser, server, `/${hash}`);
  await consolePage.page.getByLabel('API key').fill(key);
  await consolePage.page.getByRole('button', { name: 'Sign in' }).click();
  await consolePage.page.getByTestId('role').waitFor();
  return consolePage;
}
