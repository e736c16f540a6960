import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import {
  GraphQLError,
  specifiedRules,
  type DocumentNode,
  validate,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { CloseCode, MessageType, stringifyMessage, type Context } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerToken } from '../auth/principal';
import type { Config } from '../config/config';
import { ErrorCode } from '../errors';
import type { RequestContext } from '../graphql/context';
import { checkComplexity, parseOperation, type OperationLimits } from '../graphql/operation-limits';
import type { ApiKeyService } from '../services/api-key.service';

type ConnectionParams = { authorization?: unknown; Authorization?: unknown };
type Extra = { socket: WebSocket; request: import('node:http').IncomingMessage };
type Connection = Context<ConnectionParams, Extra>;

/**
 * Close codes a client sees (graphql-ws's where one fits; 4000–4999 are the application's). A frame
 * above WS_MAX_PAYLOAD_BYTES is closed by ws itself (1009), an init timeout by graphql-ws (4408).
 */
const WS_CLOSE = {
  /** No key, or an unknown or revoked one, at connection_init. */
  unauthenticated: CloseCode.Unauthorized,
  /** The key was revoked while connected; every subscription got an UNAUTHENTICATED error first. */
  revoked: CloseCode.Forbidden,
  /** The key already holds WS_MAX_CONNECTIONS_PER_KEY sockets. */
  tooManyConnections: 4429,
} as const;

/** Apollo's codes for parse and validation failures, so clients see the same ones over both transports. */
function withCode(error: unknown, code: string): GraphQLError {
  if (!(error instanceof GraphQLError)) return new GraphQLError(String(error), { extensions: { code } });
  if (typeof error.extensions.code === 'string') return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

export interface GraphQLWebSocketDependencies {
  httpServer: Server;
  schema: GraphQLSchema;
  apiKeys: ApiKeyService;
  limits: OperationLimits;
  validationRules: ValidationRule[];
  settings: Config['websocket'];
  buildContext(requestId: string, authorization: unknown, baseUrl: string): Promise<RequestContext>;
  baseUrlOf(host: string | undefined, secure: boolean): string;
  /** The same masking as over HTTP (Apollo's formatError). */
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
}

/**
 * graphql-ws on /graphql with the HTTP path's rules: a key is required at connection_init and
 * checked again (by the default-deny guard) for every operation; the same parse, validation and
 * cost limits; errors masked alike. A revoked key's subscriptions end with an UNAUTHENTICATED
 * error and its sockets close, in every replica (revocations travel over the pub/sub).
 */
export function startGraphQLWebSocket(deps: GraphQLWebSocketDependencies): { dispose(): Promise<void> } {
  const { schema, settings } = deps;
  // ws refuses a bigger frame itself (1009) before anything parses it.
  const wsServer = new WebSocketServer({
    server: deps.httpServer,
    path: '/graphql',
    maxPayload: settings.maxPayloadBytes,
  });
  const connectionsByKey = new Map<string, Set<Connection>>();
  const authorizationOf = (connection: Connection): unknown =>
    connection.connectionParams?.authorization ?? connection.connectionParams?.Authorization;

  const track = (apiKeyId: string, connection: Connection): void => {
    let connections = connectionsByKey.get(apiKeyId);
    if (!connections) connectionsByKey.set(apiKeyId, (connections = new Set()));
    connections.add(connection);
    connection.extra.socket.once('close', () => {
      connections.delete(connection);
      if (connections.size === 0 && connectionsByKey.get(apiKeyId) === connections) connectionsByKey.delete(apiKeyId);
    });
  };

  const stopListening = deps.apiKeys.onRevoked((apiKeyId) => {
    const revoked: GraphQLFormattedError[] = [
      { message: 'The API key was revoked', extensions: { code: ErrorCode.UNAUTHENTICATED } },
    ];
    for (const connection of connectionsByKey.get(apiKeyId) ?? []) {
      const { socket } = connection.extra;
      for (const id of Object.keys(connection.subscriptions))
        socket.send(stringifyMessage({ id, type: MessageType.Error, payload: revoked }));
      socket.close(WS_CLOSE.revoked, 'UNAUTHENTICATED: API key revoked');
    }
    connectionsByKey.delete(apiKeyId);
  });

  // As Apollo does: extensions.http (the status a limit refusal asks for) is for HTTP only.
  const mask = (errors: readonly GraphQLError[]): GraphQLFormattedError[] =>
    errors.map((error) => {
      const { http: _http, ...extensions } = error.extensions;
      return deps.formatError({ ...error.toJSON(), extensions }, error);
    });

  const cleanup = useServer<ConnectionParams, Extra>(
    {
      schema,
      connectionInitWaitTimeout: settings.connectionInitTimeoutMs,
      onConnect: async (connection) => {
        const { socket } = connection.extra;
        const token = bearerToken(authorizationOf(connection));
        const principal = token ? await deps.apiKeys.authenticate(token) : null;
        if (!principal) {
          socket.close(
            WS_CLOSE.unauthenticated,
            token ? 'UNAUTHENTICATED: the API key is unknown or revoked' : 'UNAUTHENTICATED: an API key is required',
          );
          return false;
        }
        if ((connectionsByKey.get(principal.apiKeyId)?.size ?? 0) >= settings.maxConnectionsPerKey) {
          socket.close(
            WS_CLOSE.tooManyConnections,
            `TOO_MANY_CONNECTIONS: at most ${settings.maxConnectionsPerKey} per API key`,
          );
          return false;
        }
        track(principal.apiKeyId, connection);
        return true;
      },
      // Built for every operation, so the key is checked again (and the guard applies) each time.
      context: (connection) =>
        deps.buildContext(
          randomUUID(),
          authorizationOf(connection),
          deps.baseUrlOf(connection.extra.request.headers.host, 'encrypted' in connection.extra.request.socket),
        ),
      onSubscribe: (connection, _id, payload) => {
        // graphql-ws has already registered this operation, so it counts itself.
        if (Object.keys(connection.subscriptions).length > settings.maxSubscriptionsPerConnection)
          return [
            new GraphQLError(
              `At most ${settings.maxSubscriptionsPerConnection} operations may be open on one connection`,
              { extensions: { code: ErrorCode.TOO_MANY_SUBSCRIPTIONS } },
            ),
          ];
        let document: DocumentNode;
        try {
          document = parseOperation(payload.query, deps.limits);
        } catch (error) {
          return [withCode(error, 'GRAPHQL_PARSE_FAILED')];
        }
        const errors = validate(schema, document, [...specifiedRules, ...deps.validationRules]);
        if (errors.length) return errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
        try {
          const variableValues = payload.variables ?? undefined;
          const operationName = payload.operationName ?? undefined;
          checkComplexity(schema, document, variableValues, operationName, deps.limits);
          return { schema, document, variableValues, operationName };
        } catch (error) {
          return [withCode(error, ErrorCode.INTERNAL_SERVER_ERROR)];
        }
      },
      onNext: (_connection, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: mask(result.errors) } : undefined,
      onError: (_connection, _id, _payload, errors) => mask(errors),
    },
    wsServer,
  );

  return {
    dispose: async () => {
      stopListening();
      await cleanup.dispose();
    },
  };
}
