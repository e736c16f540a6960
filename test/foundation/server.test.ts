import { GraphQLTestClient, SubscriptionRecorder } from '../support/graphql-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
let anonymous: GraphQLTestClient;
let admin: GraphQLTestClient;

const CREATE_KEY = `mutation($name: String!, $role: Role!) { createApiKey(name: $name, role: $role) { id name role secret } }`;

async function createKey(name: string, role: 'ADMIN' | 'LABELER' | 'VIEWER'): Promise<{ id: string; secret: string }> {
  const data = await admin.data<{ createApiKey: { id: string; secret: string } }>(CREATE_KEY, { name, role });
  return data.createApiKey;
}

beforeAll(async () => {
  server = await startTestServer({ env: { GRAPHQL_MAX_COMPLEXITY: '500' } });
  anonymous = new GraphQLTestClient(server.url);
  admin = anonymous.withKey(server.adminKey);
});

afterAll(async () => {
  await server?.stop();
});

describe('authentication and roles', () => {
  test('health answers without a key', async () => {
    const data = await anonymous.data<{ health: { status: string; version: string } }>('{ health { status version } }');
    expect(data.health.status).toBe('ok');
    expect(data.health.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  test('a query without a key is UNAUTHENTICATED', async () => {
    expect(await anonymous.errorCode('{ viewer { name } }')).toBe('UNAUTHENTICATED');
  });

  test('a query with a bad key is UNAUTHENTICATED, even next to health', async () => {
    const result = await anonymous
      .withKey('isk_not-a-key')
      .request<{ health: unknown }>('{ health { status } viewer { name } }');
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(result.errors?.[0]?.message).toMatch(/unknown or revoked/);
  });

  test('ADMIN_API_KEY is an ADMIN key', async () => {
    const data = await admin.data<{ viewer: { role: string } }>('{ viewer { role } }');
    expect(data.viewer.role).toBe('ADMIN');
  });

  test('a VIEWER calling createApiKey gets FORBIDDEN and nothing is created', async () => {
    const viewerKey = await createKey('viewer', 'VIEWER');
    const viewer = anonymous.withKey(viewerKey.secret);
    expect(await viewer.errorCode(CREATE_KEY, { name: 'sneaky', role: 'ADMIN' })).toBe('FORBIDDEN');
    expect(await viewer.errorCode('{ apiKeys { totalCount } }')).toBe('FORBIDDEN');
    const keys = await admin.data<{ apiKeys: { edges: Array<{ node: { name: string } }> } }>(
      '{ apiKeys(first: 50) { edges { node { name } } } }',
    );
    expect(keys.apiKeys.edges.map((edge) => edge.node.name)).not.toContain('sneaky');
  });

  test('a created key works at once, shows its secret once, and stops working when revoked', async () => {
    const labeler = await createKey('labeler one', 'LABELER');
    expect(labeler.secret).toMatch(/^isk_[\w-]{43}$/);
    const client = anonymous.withKey(labeler.secret);
    expect((await client.data<{ viewer: { name: string; role: string } }>('{ viewer { name role } }')).viewer).toEqual({
      name: 'labeler one',
      role: 'LABELER',
    });

    const listed = await admin.data<{ apiKeys: { edges: Array<{ node: Record<string, unknown> }> } }>(
      '{ apiKeys(first: 50) { edges { node { id secretPrefix revokedAt } } } }',
    );
    const node = listed.apiKeys.edges.find((edge) => edge.node.id === labeler.id)?.node;
    expect(node?.secretPrefix).toBe(labeler.secret.slice(0, 10));
    expect(node).not.toHaveProperty('secret');

    const revoked = await admin.data<{ revokeApiKey: { revokedAt: string | null } }>(
      'mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }',
      { id: labeler.id },
    );
    expect(revoked.revokeApiKey.revokedAt).not.toBeNull();
    expect(await client.errorCode('{ viewer { name } }')).toBe('UNAUTHENTICATED');
  });

  test('bad input is BAD_USER_INPUT and an unknown id is NOT_FOUND', async () => {
    expect(await admin.errorCode(CREATE_KEY, { name: '   ', role: 'VIEWER' })).toBe('BAD_USER_INPUT');
    expect(await admin.errorCode(CREATE_KEY, { name: 'x', role: 'SUPERUSER' })).toBe('BAD_USER_INPUT');
    expect(await admin.errorCode('mutation { revokeApiKey(id: "3f1c1f5e-0000-4000-8000-000000000000") { id } }')).toBe(
      'NOT_FOUND',
    );
  });
});

describe('connections', () => {
  test('pages with opaque cursors cover every key exactly once', async () => {
    for (let index = 0; index < 5; index += 1) await createKey(`page ${index}`, 'VIEWER');
    const query =
      'query($after: String) { apiKeys(first: 2, after: $after) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }';
    type Page = {
      apiKeys: {
        totalCount: number;
        edges: Array<{ node: { id: string } }>;
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
    };
    const seen: string[] = [];
    let after: string | null = null;
    let total = 0;
    for (let guard = 0; guard < 50; guard += 1) {
      const page: Page = await admin.data<Page>(query, { after });
      total = page.apiKeys.totalCount;
      seen.push(...page.apiKeys.edges.map((edge) => edge.node.id));
      if (!page.apiKeys.pageInfo.hasNextPage) break;
      after = page.apiKeys.pageInfo.endCursor;
    }
    expect(total).toBeGreaterThanOrEqual(6);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
  });

  test('a forged cursor or an oversized page is BAD_USER_INPUT', async () => {
    expect(await admin.errorCode('{ apiKeys(after: "bm90LWEtY3Vyc29y") { totalCount } }')).toBe('BAD_USER_INPUT');
    expect(await admin.errorCode('{ apiKeys(first: 101) { totalCount } }')).toBe('BAD_USER_INPUT');
  });
});

describe('operation limits and transport', () => {
  test('a query above GRAPHQL_MAX_COMPLEXITY is refused with QUERY_TOO_COMPLEX', async () => {
    const result = await admin.request(
      '{ apiKeys(first: 100) { edges { node { id name role createdAt revokedAt lastUsedAt secretPrefix } } } }',
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  test('limit refusals answer HTTP 400; a negative page size cannot lower the estimate of the rest', async () => {
    const post = async (query: string): Promise<{ status: number; body: GraphQLBody }> => {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminKey}` },
        body: JSON.stringify({ query }),
      });
      return { status: response.status, body: (await response.json()) as GraphQLBody };
    };
    type GraphQLBody = {
      data?: unknown;
      errors?: Array<{ extensions?: { code?: string; http?: unknown; limit?: string } }>;
    };
    const tooComplex = await post('{ apiKeys(first: 100) { edges { node { id name role createdAt } } } }');
    expect([tooComplex.status, tooComplex.body.errors?.[0]?.extensions?.code]).toEqual([400, 'QUERY_TOO_COMPLEX']);
    expect(tooComplex.body.errors?.[0]?.extensions).not.toHaveProperty('http');
    // 20 aliases of 100 keys each are above the limit; the negative page used to cancel them out.
    const aliases = Array.from({ length: 20 }, (_, i) => `k${i}: apiKeys(first: 100) { edges { node { id } } }`);
    for (const first of [-1000000, 0, 101]) {
      const bypass = await post(`{ neg: apiKeys(first: ${first}) { edges { node { id } } } ${aliases.join(' ')} }`);
      expect(bypass.status).toBe(400);
      expect(bypass.body.errors?.map((error) => error.extensions?.code)).toEqual(['BAD_USER_INPUT']);
      expect(bypass.body.data).toBeUndefined();
    }
    // More aliases than GRAPHQL_MAX_ALIASES (30), however cheap each one is.
    const cheap = Array.from({ length: 31 }, (_, i) => `h${i}: health { status }`).join(' ');
    const aliased = await post(`{ ${cheap} }`);
    expect(aliased.status).toBe(400);
    expect(aliased.body.errors?.map((error) => [error.extensions?.code, error.extensions?.limit])).toEqual([
      ['GRAPHQL_VALIDATION_FAILED', 'aliases'],
    ]);
    const tokens = await post(`{ ${'health { status } '.repeat(1300)} }`);
    expect([tokens.status, tokens.body.errors?.[0]?.extensions?.code]).toEqual([400, 'GRAPHQL_PARSE_FAILED']);
  });

  test('a mutation that loads a model or starts a job costs more than a read', async () => {
    // GRAPHQL_MAX_COMPLEXITY is 500 here; activateModel costs 100 plus its selection.
    const activations = (count: number): string =>
      `mutation { ${Array.from({ length: count }, (_, i) => `a${i}: activateModel(id: "3f1c1f5e-0000-4000-8000-00000000000${i}") { id }`).join(' ')} }`;
    expect(await admin.errorCode(activations(5))).toBe('QUERY_TOO_COMPLEX');
    // Four pass the estimate and run: the first unknown id ends the (serial) mutation.
    expect(await admin.errorCode(activations(4))).toBe('NOT_FOUND');
    // The same number of reads costs a few points each.
    expect(
      (await admin.request(`{ ${Array.from({ length: 5 }, (_, i) => `h${i}: health { status }`).join(' ')} }`)).errors,
    ).toBeUndefined();
  });

  test('CSRF prevention refuses a simple cross-site request', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: '{ health { status } }' }),
    });
    expect(response.status).toBe(400);
  });

  test('healthz, readyz and metrics answer; the request id is echoed', async () => {
    const health = await fetch(`${server.baseUrl}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.baseUrl}/readyz`, { headers: { 'x-request-id': 'trace-123' } });
    expect(ready.status).toBe(200);
    expect(ready.headers.get('x-request-id')).toBe('trace-123');
    const report = (await ready.json()) as { ready: boolean; checks: Array<{ name: string; ok: boolean }> };
    expect(report.ready).toBe(true);
    expect(report.checks.map((check) => check.name).sort()).toEqual(['database', 'models', 'objectStore']);
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^graphql_operations_total\{type="query",root_field="health",outcome="ok"\} \d+/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  test('/metrics does not grow with client-chosen operation names, fields or paths', async () => {
    const random = (): string => `x${Math.random().toString(36).slice(2, 10)}`;
    const noise = async (): Promise<string[]> => {
      const made: string[] = [];
      for (let i = 0; i < 10; i++) {
        const [name, field, pathName] = [random(), random(), random()];
        made.push(name, field, pathName);
        await anonymous.request(`query ${name} { health { status } }`);
        await anonymous.request(`query ${name}b { ${field} }`);
        await fetch(`${server.baseUrl}/${pathName}`);
        await fetch(`${server.baseUrl}/graphql/${pathName}?query=${field}`);
      }
      return made;
    };
    const series = async (): Promise<string[]> =>
      (await (await fetch(`${server.baseUrl}/metrics`)).text())
        .split('\n')
        .filter(
          (line) =>
            line.startsWith('graphql_operations_total') || line.startsWith('http_request_duration_seconds_count'),
        )
        .map((line) => line.replace(/ [\d.e+-]+$/, ''));
    await noise();
    const before = await series();
    const made = await noise();
    const after = await series();
    expect(after.sort()).toEqual(before.sort());
    const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
    for (const value of made) expect(text).not.toContain(value);
  });

  test('unexpected errors carry no stack trace outside development', async () => {
    const result = await admin.request('{ apiKeys(first: 0) { totalCount } }');
    const error = result.errors?.[0];
    expect(error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(error)).not.toMatch(/stacktrace|at .*\.js:\d+/);
  });
});

describe('subscriptions over graphql-ws', () => {
  const EVENTS = 'subscription { apiKeyEvents { kind apiKey { id name role } } }';

  test('an ADMIN receives the keys created and revoked by a mutation', async () => {
    const client = admin.websocket();
    const events = new SubscriptionRecorder<{ apiKeyEvents: { kind: string; apiKey: { id: string; name: string } } }>(
      client,
      EVENTS,
    );
    try {
      // The subscription is registered once the server has acknowledged the connection;
      // publish until the first event arrives so the test does not depend on timing.
      let created: { id: string; secret: string } | undefined;
      for (let attempt = 0; attempt < 20 && events.results.length === 0; attempt += 1) {
        created = await createKey(`subscribed ${attempt}`, 'VIEWER');
        await events.waitFor((results) => results.length > 0, 500).catch(() => undefined);
      }
      expect(created).toBeDefined();
      const last = created as { id: string };
      await admin.data('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: last.id });
      const results = await events.waitFor((all) => all.some((result) => result.data?.apiKeyEvents.kind === 'REVOKED'));
      const revoked = results.find((result) => result.data?.apiKeyEvents.kind === 'REVOKED');
      expect(revoked?.data?.apiKeyEvents.apiKey.id).toBe(last.id);
      expect(results.every((result) => !result.errors)).toBe(true);
    } finally {
      events.dispose();
      await client.dispose();
    }
  });

  test('without a key the websocket is refused at connection_init (4401); a VIEWER gets FORBIDDEN', async () => {
    const anonymousEvents = new SubscriptionRecorder(anonymous.websocket(), EVENTS);
    const viewer = anonymous.withKey((await createKey('ws viewer', 'VIEWER')).secret).websocket();
    const viewerEvents = new SubscriptionRecorder(viewer, EVENTS);
    try {
      await anonymousEvents.waitFor(() => anonymousEvents.done);
      const closed = anonymousEvents.error as { code?: number; reason?: string };
      expect([closed.code, closed.reason]).toEqual([4401, expect.stringMatching(/^UNAUTHENTICATED/)]);
      await viewerEvents.waitFor((results) => results.length > 0 || viewerEvents.done);
      const errors = viewerEvents.results[0]?.errors ?? (viewerEvents.error as { extensions?: { code?: string } }[]);
      expect(errors.map((error) => error.extensions?.code)).toEqual(['FORBIDDEN']);
    } finally {
      anonymousEvents.dispose();
      viewerEvents.dispose();
      await viewer.dispose();
    }
  });
});
