import { Query, Resolver } from 'type-graphql';
import { Health } from '../schema/health.types';
import { SERVICE_VERSION } from '../version';

@Resolver(() => Health)
export class HealthResolver {
  @Query(() => Health, { description: 'Liveness; the one operation that needs no API key' })
  health(): Health {
    return { status: 'ok', version: SERVICE_VERSION, uptimeSeconds: process.uptime() };
  }
}
