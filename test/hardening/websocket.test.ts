// The websocket transport holds the same line as HTTP: a key at connection_init, limits on
// frames, time to init, operations per socket and sockets per key, the same error masking, and a
// revocation that ends every subscription of the key at once, on every replica.
import WebSocket from 'ws';
import { GraphQLTestClient } from '../support/graphql-client';
import { startTestServer, type TestServer } from '../support/test-server';

const PROTOCOL = 'graphql-transport-ws';
const EVENTS = 'subscription { apiKeyEvents { kind apiKey { id } } }';

interface ProtocolMessage {
  type: string;
  id?: string;
  payload?: unknown;
}

/** A graphql-transport-ws client that shows the raw protocol: every message and the close code. */
class RawSocket {
  readonly messages: ProtocolMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly socket: WebSocket;
  private readonly opened: Promise<void>;

  constructor(wsUrl: string) {
    this.socket = new WebSocket(wsUrl, PROTOCOL);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('message', (data: Buffer) => this.messages.push(JSON.parse(data.toString()) as ProtocolMessage));
    this.closed = new Promise((resolve) =>
      this.socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    );
  }

  async send(message: ProtocolMessage | string): Promise<void> {
    await this.opened;
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** connection_init with a key; resolves once acknowledged, or with the close if refused. */
  async init(apiKey?: string): Promise<'ack' | { code: number; reason: string }> {
    await this.send({ type: 'connection_init', payload: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
    return Promise.race([this.waitFor((m) => m.type === 'connection_ack').then(() => 'ack' as const), this.closed]);
  }

  async subscribe(id: string, query: string, variables?: Record<string, unknown>): Promise<void> {
    await this.send({ id, type: 'subscribe', payload: { query, variables } });
  }

  async waitFor(match: (message: ProtocolMessage) => boolean, timeoutMs = 10_000): Promise<ProtocolMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no such message within ${timeoutMs} ms: ${JSON.stringify(this.messages)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    this.socket.close();
  }
}

const errorCodes = (message: ProtocolMessage | undefined): unknown[] =>
  ((message?.payload as Array<{ extensions?: { code?: string } }> | undefined) ?? []).map(
    (error) => error.extensions?.code,
  );

let server: TestServer;
let replica: TestServer;
let admin: GraphQLTestClient;

const LIMITS = {
  WS_MAX_PAYLOAD_BYTES: String(64 * 1024),
  WS_CONNECTION_INIT_TIMEOUT_MS: '500',
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '2',
  WS_MAX_CONNECTIONS_PER_KEY: '2',
};

beforeAll(async () => {
  server = await startTestServer({ env: LIMITS });
  // A second replica on the same database and bucket: revocations reach it over the pub/sub.
  replica = await startTestServer({
    env: LIMITS,
    databaseUrl: server.databaseUrl,
    bucket: server.bucket,
    adminKey: server.adminKey,
  });
  admin = new GraphQLTestClient(server.url, server.adminKey);
});

afterAll(async () => {
  await Promise.all([server?.stop(), replica?.stop()]);
});

async function createKey(name: string, role: 'ADMIN' | 'VIEWER'): Promise<{ id: string; secret: string }> {
  const data = await admin.data<{ createApiKey: { id: string; secret: string } }>(
    'mutation($name: String!, $role: Role!) { createApiKey(name: $name, role: $role) { id secret } }',
    { name, role },
  );
  return data.createApiKey;
}

async function healthy(target: TestServer): Promise<void> {
  const data = await new GraphQLTestClient(target.url).data<{ health: { status: string } }>('{ health { status } }');
  expect(data.health.status).toBe('ok');
}

describe('connection', () => {
  test('connection_init without a key, or with an unknown or revoked one, is refused with 4401', async () => {
    const revoked = await createKey('revoked before connecting', 'VIEWER');
    await admin.data('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: revoked.id });
    for (const key of [undefined, 'isk_not-a-key', revoked.secret]) {
      const socket = new RawSocket(server.wsUrl);
      const outcome = await socket.init(key);
      expect(outcome).toEqual({ code: 4401, reason: expect.stringMatching(/^UNAUTHENTICATED/) });
      expect(socket.messages).toEqual([]);
    }
    await healthy(server);
  });

  test('a frame above WS_MAX_PAYLOAD_BYTES closes the socket (1009) before it is parsed', async () => {
    const socket = new RawSocket(server.wsUrl);
    await socket.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(100 * 1024) } }));
    expect((await socket.closed).code).toBe(1009);
    await healthy(server);
  });

  test('a socket that does not init within WS_CONNECTION_INIT_TIMEOUT_MS is closed (4408)', async () => {
    const socket = new RawSocket(server.wsUrl);
    await socket.send(JSON.stringify({ type: 'ping' }));
    expect((await socket.closed).code).toBe(4408);
  });

  test('an API key holds at most WS_MAX_CONNECTIONS_PER_KEY sockets (4429 beyond); closing one frees a place', async () => {
    const key = await createKey('many sockets', 'VIEWER');
    const first = new RawSocket(server.wsUrl);
    const second = new RawSocket(server.wsUrl);
    expect([await first.init(key.secret), await second.init(key.secret)]).toEqual(['ack', 'ack']);
    const third = new RawSocket(server.wsUrl);
    expect(await third.init(key.secret)).toEqual({
      code: 4429,
      reason: expect.stringMatching(/^TOO_MANY_CONNECTIONS/),
    });
    first.close();
    await first.closed;
    const fourth = new RawSocket(server.wsUrl);
    expect(await fourth.init(key.secret)).toBe('ack');
    second.close();
    fourth.close();
  });
});

describe('operations', () => {
  test('a socket holds at most WS_MAX_SUBSCRIPTIONS_PER_CONNECTION operations (TOO_MANY_SUBSCRIPTIONS beyond)', async () => {
    const socket = new RawSocket(server.wsUrl);
    expect(await socket.init(server.adminKey)).toBe('ack');
    await socket.subscribe('1', EVENTS);
    await socket.subscribe('2', EVENTS);
    await socket.subscribe('3', EVENTS);
    const refused = await socket.waitFor((message) => message.id === '3');
    expect([refused.type, ...errorCodes(refused)]).toEqual(['error', 'TOO_MANY_SUBSCRIPTIONS']);
    // The first two are still open: an event reaches both.
    await createKey('seen by both subscriptions', 'VIEWER');
    await socket.waitFor((message) => message.id === '1' && message.type === 'next');
    await socket.waitFor((message) => message.id === '2' && message.type === 'next');
    socket.close();
  });

  test('the parse, validation and cost limits of HTTP apply, and errors are masked alike', async () => {
    const socket = new RawSocket(server.wsUrl);
    expect(await socket.init(server.adminKey)).toBe('ack');
    const aliases = Array.from({ length: 31 }, (_, i) => `h${i}: health { status }`).join(' ');
    const cases: Array<[string, string, string[]]> = [
      ['aliases', `{ ${aliases} }`, ['GRAPHQL_VALIDATION_FAILED']],
      [
        'cost',
        '{ apiKeys(first: 100) { edges { node { id } } } a: apiKeys(first: 100) { edges { node { id } } } b: apiKeys(first: 100) { edges { node { id } } } c: apiKeys(first: 100) { edges { node { id } } } d: apiKeys(first: 100) { edges { node { id } } } e: apiKeys(first: 100) { edges { node { id } } } f: apiKeys(first: 100) { edges { node { id } } } g: apiKeys(first: 100) { edges { node { id } } } h: apiKeys(first: 100) { edges { node { id } } } i: apiKeys(first: 100) { edges { node { id } } } }',
        ['QUERY_TOO_COMPLEX'],
      ],
      ['page', '{ apiKeys(first: -5) { totalCount } }', ['BAD_USER_INPUT']],
      ['tokens', `{ ${'health { status } '.repeat(1300)} }`, []],
    ];
    for (const [id, query, codes] of cases) {
      await socket.subscribe(id, query);
      const answer = await socket.waitFor((message) => message.id === id);
      expect([id, answer.type]).toEqual([id, 'error']);
      if (codes.length) expect(errorCodes(answer)).toEqual(codes);
    }
    // A failure inside a resolver (here PostgreSQL refusing a cursor's id that is not a UUID) is
    // masked as over HTTP: the same code and message, nothing of PostgreSQL's own text.
    const cursor = Buffer.from(JSON.stringify(['2020-01-01T00:00:00.000Z', 'not-a-uuid', 'd'])).toString('base64url');
    const forged = `{ apiKeys(after: "${cursor}") { totalCount } }`;
    await socket.subscribe('cursor', forged);
    const overWs = await socket.waitFor((message) => message.id === 'cursor' && message.type === 'next');
    const overHttp = await admin.request(forged);
    const wsErrors = (overWs.payload as { errors: Array<{ message: string; extensions?: { code?: string } }> }).errors;
    expect(wsErrors.map((error) => [error.message, error.extensions?.code])).toEqual([
      ['Internal server error', 'INTERNAL_SERVER_ERROR'],
    ]);
    expect(wsErrors).toEqual(overHttp.errors);
    socket.close();
  });
});

describe('revocation', () => {
  test('on revokeApiKey, every subscription of the key ends with UNAUTHENTICATED and its sockets close, on every replica', async () => {
    const key = await createKey('revoked while subscribed', 'ADMIN');
    const sockets = [new RawSocket(server.wsUrl), new RawSocket(replica.wsUrl)];
    for (const socket of sockets) {
      expect(await socket.init(key.secret)).toBe('ack');
      await socket.subscribe('events', EVENTS);
    }
    // Subscribed once an event has reached both sockets.
    for (let attempt = 0; attempt < 20; attempt += 1) {
      await createKey(`probe ${attempt}`, 'VIEWER');
      const arrived = await Promise.all(
        sockets.map((socket) =>
          socket
            .waitFor((message) => message.type === 'next', 500)
            .then(
              () => true,
              () => false,
            ),
        ),
      );
      if (arrived.every(Boolean)) break;
    }
    await admin.data('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: key.id });
    for (const socket of sockets) {
      const ended = await socket.waitFor((message) => message.id === 'events' && message.type === 'error', 5000);
      expect(errorCodes(ended)).toEqual(['UNAUTHENTICATED']);
      expect(await socket.closed).toEqual({ code: 4403, reason: expect.stringMatching(/^UNAUTHENTICATED/) });
    }
    await healthy(server);
    await healthy(replica);
  });
});
