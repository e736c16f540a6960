import { readdirSync } from 'node:fs';
import path from 'node:path';
import { GraphQLTestClient } from '../support/graphql-client';
import { startTestServer, type TestServer } from '../support/test-server';

// npm test builds the console first (pretest: npm run build), so dist/console exists here.
const BUILT_ASSETS = path.resolve(__dirname, '..', '..', 'dist', 'console', 'assets');
const CONSOLE_ORIGIN = 'http://console.example:4000';

describe('the console and GraphiQL pages', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { S3_CORS_ALLOWED_ORIGINS: CONSOLE_ORIGIN } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('/ and /graphiql are the built pages, with a script policy of this origin only and no framing', async () => {
    for (const [route, marker] of [
      ['/', '<div id="root">'],
      ['/graphiql', '<div id="graphiql">'],
    ] as const) {
      const response = await fetch(`${server.baseUrl}${route}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await response.text()).toContain(marker);
      const policy = response.headers.get('content-security-policy') ?? '';
      expect(policy).toContain("script-src 'self'");
      expect(policy).toContain("frame-ancestors 'none'");
      expect(response.headers.get('cache-control')).toBe('no-cache');
    }
  });

  test('hashed assets are cached for a year; an unknown asset is 404, not the page', async () => {
    const asset = readdirSync(BUILT_ASSETS).find((name) => name.endsWith('.js'));
    expect(asset).toBeDefined();
    const response = await fetch(`${server.baseUrl}/assets/${asset}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${server.baseUrl}/assets/missing-0000.js`)).status).toBe(404);
  });

  test('S3_CORS_ALLOWED_ORIGINS lets that origin (and no other) PUT to a presigned URL from a browser', async () => {
    const admin = new GraphQLTestClient(server.url, server.adminKey);
    const { requestInspectionUpload } = await admin.data<{ requestInspectionUpload: { url: string } }>(
      'mutation { requestInspectionUpload(input: { contentType: "image/png", byteSize: 10 }) { url } }',
    );
    const preflight = (origin: string) =>
      fetch(requestInspectionUpload.url, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'PUT',
          'access-control-request-headers': 'content-type',
        },
      });
    const allowed = await preflight(CONSOLE_ORIGIN);
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-methods')).toContain('PUT');
    expect((await preflight('http://elsewhere.example')).status).toBe(403);
  });
});

test('CONSOLE=false and GRAPHIQL=false serve neither page; the API still answers', async () => {
  const server = await startTestServer({ env: { CONSOLE: 'false', GRAPHIQL: 'false' } });
  try {
    expect((await fetch(`${server.baseUrl}/`)).status).toBe(404);
    expect((await fetch(`${server.baseUrl}/graphiql`)).status).toBe(404);
    const health = await new GraphQLTestClient(server.url, server.adminKey).data<{ health: { status: string } }>(
      '{ health { status } }',
    );
    expect(health.health.status).toBeDefined();
  } finally {
    await server.stop();
  }
});
