import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Config } from '../config/config';
import { buildAppSchema, type ResolverBinding } from '../graphql/schema';
import { Readiness } from '../http/readiness';
import { consolePagesRouter } from '../http/console.route';
import { startHttpServer } from '../http/server';
import { ServiceMetrics } from '../observability/prometheus';
import { ApiKeyResolver } from '../resolvers/api-key.resolver';
import { HealthResolver } from '../resolvers/health.resolver';
import { ApiKeyService } from '../services/api-key.service';
import { Cleanups, startBackgroundWork, startCore } from './bootstrap';
import type { Infrastructure } from './infrastructure';

export interface Application {
  url: string;
  port: number;
  /** Secret of the ADMIN key created on a fresh database, to be shown once. */
  initialAdminKey: string | null;
  dataSource: DataSource;
  stop(): Promise<void>;
}

/** Every resolver the API serves; scripts/print-schema.ts prints schema.graphql from the same list. */
export function apiResolverBindings(
  apiKeys: ApiKeyService,
  domains: Array<{ resolverBindings(): ResolverBinding[] }>,
): ResolverBinding[] {
  return [
    [HealthResolver, new HealthResolver()],
    [ApiKeyResolver, new ApiKeyResolver(apiKeys)],
    ...domains.flatMap((domain) => domain.resolverBindings()),
  ];
}

/** The API server: the shared core (see bootstrap.ts), API keys, readiness, and GraphQL over HTTP and websockets. */
export async function startApplication(
  config: Config,
  infrastructure: Infrastructure,
  logger: Logger,
): Promise<Application> {
  const cleanups = new Cleanups(logger);
  try {
    const core = await startCore(config, infrastructure, logger, cleanups);
    const { dataSource, objectStore, pubSub, datasets, inspection, evaluations } = core;

    const apiKeys = new ApiKeyService(core.db, pubSub);
    cleanups.add('api key revocations', () => apiKeys.close());
    if (config.adminApiKey) await apiKeys.ensureAdminKey(config.adminApiKey, logger);
    const initialAdminKey = await apiKeys.createInitialAdminKey();

    const readiness = new Readiness({ logger, livenessGraceMs: config.database.livenessGraceSeconds * 1000 });
    // Liveness follows the event listener's connection, retried every few seconds while it is down,
    // so /healthz needs no query of its own.
    readiness.registerVital('database', () => pubSub.connection?.downSince ?? null);
    readiness.register('database', () => core.db.ping());
    readiness.register('objectStore', () => objectStore.ping());
    await inspection.start(readiness, { embeddedDatabase: infrastructure.embedded.postgres });

    const schema = await buildAppSchema(apiResolverBindings(apiKeys, [datasets, inspection, evaluations]), pubSub);
    const http = await startHttpServer({
      config,
      logger,
      schema,
      dataSource,
      apiKeys,
      readiness,
      metrics: new ServiceMetrics(inspection.metrics),
      routers: [...inspection.httpRouters(), consolePagesRouter(config.pages)],
    });
    // Stopped first: in-flight requests finish before anything they use goes away.
    cleanups.add('http and websocket server', () => http.close());

    if (config.jobWorkersInProcess) await startBackgroundWork(core);

    return { url: http.url, port: http.port, initialAdminKey, dataSource, stop: () => cleanups.runAll() };
  } catch (error) {
    await cleanups.runAll();
    throw error;
  }
}
