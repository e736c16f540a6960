import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express, { type Router } from 'express';
import { GraphQLError, Kind, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { bearerToken, type Principal } from '../auth/principal';
import type { Config } from '../config/config';
import { EntityLoaders } from '../db/entity-loaders';
import type { DataSource } from 'typeorm';
import { AppError, ErrorCode } from '../errors';
import type { RequestContext } from '../graphql/context';
import { introspectionPlugin, introspectionRules } from '../graphql/introspection';
import { checkComplexity, limitRules, parseOptions, type OperationLimits } from '../graphql/operation-limits';
import type { ServiceMetrics } from '../observability/prometheus';
import type { ApiKeyService } from '../services/api-key.service';
import { startGraphQLWebSocket } from './graphql-websocket';
import type { Readiness } from './readiness';

export interface HttpServerDependencies {
  config: Config;
  logger: Logger;
  schema: GraphQLSchema;
  dataSource: DataSource;
  apiKeys: ApiKeyService;
  readiness: Readiness;
  metrics: ServiceMetrics;
  /** Routes of the domains outside GraphQL (e.g. the inspection image URLs). */
  routers?: Router[];
}

export interface RunningHttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Codes our own errors and graphql-js / Apollo use for expected failures. */
function isExpectedError(error: unknown): boolean {
  return (
    error instanceof AppError ||
    (error instanceof GraphQLError &&
      typeof error.extensions.code === 'string' &&
      error.extensions.code !== ErrorCode.INTERNAL_SERVER_ERROR)
  );
}

function formatError(logger: Logger, exposeStackTraces: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
    if (
      isExpectedError(original) ||
      (formatted.extensions?.code && formatted.extensions.code !== ErrorCode.INTERNAL_SERVER_ERROR)
    ) {
      return formatted;
    }
    logger.error({ err: original, path: formatted.path }, 'unexpected error while resolving');
    if (exposeStackTraces) return formatted;
    return {
      message: 'Internal server error',
      path: formatted.path,
      locations: formatted.locations,
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
    };
  };
}

function operationPlugin(deps: HttpServerDependencies, limits: OperationLimits): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async didResolveOperation({ request, document, schema }) {
          checkComplexity(schema, document, request.variables, request.operationName, limits);
        },
        async willSendResponse({ contextValue, operation, errors, operationName, schema }) {
          const outcome = errors?.length ? 'error' : 'ok';
          // Label values from our schema only (never the client's operation name or a field it
          // made up), so no number of requests adds series.
          const rootType = operation ? schema.getRootType(operation.operation) : null;
          const rootFields = new Set<string>();
          for (const selection of operation?.selectionSet.selections ?? [])
            if (selection.kind === Kind.FIELD && rootType?.getFields()[selection.name.value])
              rootFields.add(selection.name.value);
          for (const rootField of rootFields.size > 0 ? rootFields : ['none'])
            deps.metrics.graphqlOperations.inc({
              type: operation?.operation ?? 'unknown',
              root_field: rootField,
              outcome,
            });
          contextValue.logger.info(
            {
              operation: operationName ?? null,
              type: operation?.operation,
              durationMs: Number(process.hrtime.bigint() - started) / 1e6,
              errors: errors?.map((e) => e.extensions.code ?? e.message),
            },
            'graphql operation',
          );
        },
      };
    },
  };
}

export async function startHttpServer(deps: HttpServerDependencies): Promise<RunningHttpServer> {
  const { config, logger, schema } = deps;
  const limits: OperationLimits = config.graphql;
  // Shared with the websocket path, so both refuse the same operations with the same codes.
  const validationRules = [...limitRules(limits), ...introspectionRules(config.graphql.introspection)];
  const app = express();
  app.disable('x-powered-by');
  const httpServer: Server = createServer(app);

  const authenticate = async (
    header: unknown,
  ): Promise<{ principal: Principal | null; credentialsRejected: boolean }> => {
    const token = bearerToken(header);
    if (!token)
      return { principal: null, credentialsRejected: header !== undefined && header !== null && header !== '' };
    const principal = await deps.apiKeys.authenticate(token);
    return { principal, credentialsRejected: principal === null };
  };

  const baseUrlOf = (host: string | undefined, secure: boolean): string =>
    config.publicUrl ?? `${secure ? 'https' : 'http'}://${host ?? `${config.host}:${config.port}`}`;

  const buildContext = async (requestId: string, authorization: unknown, baseUrl: string): Promise<RequestContext> => ({
    requestId,
    baseUrl,
    ...(await authenticate(authorization)),
    logger: logger.child({ requestId }),
    loaders: new EntityLoaders(deps.dataSource),
  });

  const formatGraphQLError = formatError(logger, config.graphql.exposeStackTraces);
  const websocket = startGraphQLWebSocket({
    httpServer,
    schema,
    apiKeys: deps.apiKeys,
    limits,
    validationRules,
    settings: config.websocket,
    buildContext,
    baseUrlOf,
    formatError: formatGraphQLError,
  });

  const apollo = new ApolloServer<RequestContext>({
    schema,
    csrfPrevention: true,
    // main.ts owns the signals and stops everything in order; Apollo must not race it.
    stopOnTerminationSignals: false,
    // GRAPHQL_INTROSPECTION decides (introspectionRules and introspectionPlugin), for both transports.
    introspection: true,
    includeStacktraceInErrorResponses: config.graphql.exposeStackTraces,
    validationRules,
    parseOptions: parseOptions(limits),
    formatError: formatGraphQLError,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await websocket.dispose();
            },
          };
        },
      },
      ApolloServerPluginLandingPageDisabled(),
      introspectionPlugin(config.graphql.introspection),
      operationPlugin(deps, limits),
    ],
  });
  await apollo.start();

  app.use((request, response, next) => {
    const header = request.header('x-request-id');
    const requestId = header && /^[\w.-]{1,100}$/.test(header) ? header : randomUUID();
    response.locals.requestId = requestId;
    response.setHeader('x-request-id', requestId);
    const stopTimer = deps.metrics.httpRequestDuration.startTimer({ method: request.method });
    // Routes we declared, never the path a client made up.
    response.on('finish', () => {
      const route =
        request.route?.path ?? (request.originalUrl.split('?')[0] === '/graphql' ? '/graphql' : 'unmatched');
      stopTimer({ route: String(route), status: String(response.statusCode) });
    });
    next();
  });

  // Liveness: 503 once a vital dependency has been down past its grace period, so that the
  // orchestrator restarts the process. No query per call: the states are kept up to date elsewhere.
  app.get('/healthz', (_request, response) => {
    const liveness = deps.readiness.liveness();
    if (liveness.alive) response.json({ status: 'ok' });
    else response.status(503).json({ status: 'unavailable', checks: liveness.checks });
  });
  app.get('/readyz', async (_request, response) => {
    const report = await deps.readiness.report();
    response.status(report.ready ? 200 : 503).json(report);
  });
  app.get('/metrics', async (_request, response) => {
    response.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  for (const router of deps.routers ?? []) app.use(router);
  app.use(
    '/graphql',
    // Credentials travel in the Authorization header, never in cookies, so any origin may call.
    cors(),
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) =>
        buildContext(String(res.locals.requestId), req.headers.authorization, baseUrlOf(req.get('host'), req.secure)),
    }),
  );

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  return {
    url: `http://${shownHost}:${port}/graphql`,
    port,
    // Apollo's drain plugin stops accepting requests, lets in-flight ones finish and
    // closes idle keep-alive sockets; the websocket cleanup closes every subscription.
    close: async () => {
      await apollo.stop();
    },
  };
}
