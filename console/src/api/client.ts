import { createClient as createWebSocketClient, type Client as WebSocketClient } from 'graphql-ws';
import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange } from 'urql';
import { hasCode } from './errors';

/** Close codes after which reconnecting cannot help: the key is missing, unknown or revoked. */
const KEY_REFUSED_CLOSE_CODES = new Set([4401, 4403]);

export interface ApiClient {
  client: Client;
  /** The websocket the subscriptions share; it reconnects by itself after a lost connection. */
  socket: WebSocketClient;
  dispose(): void;
}

export function graphqlHttpUrl(): string {
  return `${window.location.origin}/graphql`;
}

export function graphqlWebSocketUrl(): string {
  return `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/graphql`;
}

/**
 * One urql client per API key: queries and mutations over HTTP with the key as a bearer token,
 * subscriptions over graphql-ws with the same key in connection_init (as the service expects).
 */
export function createApiClient(apiKey: string, onKeyRefused: () => void): ApiClient {
  const authorization = `Bearer ${apiKey}`;
  const socket = createWebSocketClient({
    url: graphqlWebSocketUrl(),
    connectionParams: { authorization },
    lazy: true,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: (event) => {
      const code = (event as CloseEvent | undefined)?.code;
      if (code !== undefined && KEY_REFUSED_CLOSE_CODES.has(code)) {
        onKeyRefused();
        return false;
      }
      return true;
    },
  });
  const client = new Client({
    url: graphqlHttpUrl(),
    requestPolicy: 'cache-and-network',
    // POST with a JSON body: the service's CSRF protection refuses GET queries without a preflight header.
    preferGetMethod: false,
    fetchOptions: () => ({ headers: { authorization } }),
    exchanges: [
      // A key revoked while the console is open: every later answer is UNAUTHENTICATED.
      mapExchange({
        onError: (error) => {
          if (hasCode(error, 'UNAUTHENTICATED')) onKeyRefused();
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: socket.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
  return { client, socket, dispose: () => void socket.dispose() };
}
