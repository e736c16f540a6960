// GraphiQL, bundled from npm (no CDN). The fetcher sends the headers editor's Authorization on
// HTTP and puts the same value in graphql-ws's connection_init, so one header serves queries,
// mutations and subscriptions.
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { GraphiQL } from 'graphiql';
import type { Fetcher, FetcherOpts, FetcherParams } from '@graphiql/toolkit';
import { createClient, type Client } from 'graphql-ws';
import { getOperationAST, parse } from 'graphql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { graphqlHttpUrl, graphqlWebSocketUrl } from '../api/client';

const CONSOLE_KEY = 'inspection-console.api-key';

function authorizationOf(headers: Record<string, unknown> | undefined): string | undefined {
  const entry = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === 'authorization');
  return typeof entry?.[1] === 'string' ? entry[1] : undefined;
}

function isSubscription(params: FetcherParams): boolean {
  try {
    return getOperationAST(parse(params.query), params.operationName ?? undefined)?.operation === 'subscription';
  } catch {
    return false; // the server answers the syntax error
  }
}

/** One websocket per Authorization value: changing the header opens a socket with the new key. */
let socket: { authorization: string | undefined; client: Client } | null = null;
function socketFor(authorization: string | undefined): Client {
  if (socket && socket.authorization === authorization) return socket.client;
  void socket?.client.dispose();
  const client = createClient({ url: graphqlWebSocketUrl(), connectionParams: authorization ? { authorization } : {} });
  socket = { authorization, client };
  return client;
}

// A key the console signed in with (same tab) is used until the headers editor names one: GraphiQL
// loads the schema before it applies defaultHeaders.
const consoleKey = sessionStorage.getItem(CONSOLE_KEY);

const fetcher: Fetcher = (params: FetcherParams, options?: FetcherOpts) => {
  const headers: Record<string, unknown> = { ...options?.headers };
  if (authorizationOf(headers) === undefined && consoleKey) headers.Authorization = `Bearer ${consoleKey}`;
  if (isSubscription(params)) {
    const client = socketFor(authorizationOf(headers));
    // GraphiQL only reads these results as JSON: its ExecutionResult type is stricter than what it uses.
    return client.iterate({
      query: params.query,
      variables: params.variables ?? undefined,
      operationName: params.operationName ?? undefined,
    }) as unknown as ReturnType<Fetcher>;
  }
  return fetch(graphqlHttpUrl(), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(params),
  }).then((response) => response.json());
};

const defaultHeaders = JSON.stringify({ Authorization: `Bearer ${consoleKey ?? 'isk_…'}` }, null, 2);

createRoot(document.getElementById('graphiql') as HTMLElement).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} defaultHeaders={defaultHeaders} isHeadersEditorEnabled shouldPersistHeaders={false} />
  </StrictMode>,
);
