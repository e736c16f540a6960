import { buildClientSchema, type IntrospectionQuery, getIntrospectionQuery } from 'graphql';
import { buildContractSchema } from '../../scripts/print-schema';
import { printSchemaContract } from '../../src/graphql/schema-contract';
import { GraphQLTestClient, SubscriptionRecorder } from '../support/graphql-client';
import { startTestServer, type TestServer } from '../support/test-server';

type Body = {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
};

async function post(url: string, query: string, key?: string): Promise<{ status: number; body: Body }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, body: (await response.json()) as Body };
}

const SCHEMA = '{ __schema { queryType { name } } }';
const TYPE_IN_FRAGMENT = 'query { ...Q } fragment Q on Query { __type(name: "Health") { name } }';
const TYPENAME = '{ __typename health { __typename status } }';

describe('GRAPHQL_INTROSPECTION unset with a DATABASE_URL: key', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { GRAPHQL_INTROSPECTION: undefined } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('an anonymous introspection query is UNAUTHENTICATED (401), also through a fragment', async () => {
    for (const query of [SCHEMA, TYPE_IN_FRAGMENT]) {
      const { status, body } = await post(server.url, query);
      expect([status, body.errors?.map((error) => error.extensions?.code)]).toEqual([401, ['UNAUTHENTICATED']]);
      expect(body.data).toBeUndefined();
    }
    const badKey = await post(server.url, SCHEMA, 'isk_not-a-key');
    expect([badKey.status, badKey.body.errors?.[0]?.extensions?.code]).toEqual([401, 'UNAUTHENTICATED']);
  });

  test('with a key it works, and serves the schema scripts/print-schema.ts prints', async () => {
    const admin = new GraphQLTestClient(server.url, server.adminKey);
    expect(await admin.data(TYPE_IN_FRAGMENT)).toEqual({ __type: { name: 'Health' } });
    const served = buildClientSchema(await admin.data<IntrospectionQuery>(getIntrospectionQuery()));
    expect(printSchemaContract(served)).toBe(printSchemaContract(await buildContractSchema()));
  });

  test('__typename needs no key', async () => {
    const { status, body } = await post(server.url, TYPENAME);
    expect([status, body]).toEqual([
      200,
      { data: { __typename: 'Query', health: { __typename: 'Health', status: 'ok' } } },
    ]);
  });
});

describe('GRAPHQL_INTROSPECTION=off', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { GRAPHQL_INTROSPECTION: 'off' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('an ADMIN is refused over HTTP with GRAPHQL_VALIDATION_FAILED (400)', async () => {
    for (const query of [SCHEMA, TYPE_IN_FRAGMENT]) {
      const { status, body } = await post(server.url, query, server.adminKey);
      expect([status, body.errors?.map((error) => error.extensions?.code)]).toEqual([
        400,
        ['GRAPHQL_VALIDATION_FAILED'],
      ]);
      expect(body.errors?.[0]?.message).toBe(
        `Introspection is turned off on this server: "${query === SCHEMA ? '__schema' : '__type'}" may not be queried`,
      );
    }
  });

  test('and over websockets', async () => {
    const client = new GraphQLTestClient(server.url, server.adminKey).websocket();
    try {
      const recorder = new SubscriptionRecorder(client, SCHEMA);
      await recorder.waitForCompletion();
      expect(recorder.results).toEqual([]);
      const errors = recorder.error as Array<{ extensions?: { code?: string } }>;
      expect(errors.map((error) => error.extensions?.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      const typename = new SubscriptionRecorder<{ __typename: string }>(client, '{ __typename }');
      await typename.waitForCompletion();
      expect(typename.results).toEqual([{ data: { __typename: 'Query' } }]);
    } finally {
      await client.dispose();
    }
  });

  test('__typename is still fine, with or without a key', async () => {
    for (const key of [undefined, server.adminKey]) {
      const { status, body } = await post(server.url, TYPENAME, key);
      expect([status, body.errors]).toEqual([200, undefined]);
    }
  });
});
