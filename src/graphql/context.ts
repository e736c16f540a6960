import type { Logger } from 'pino';
import type { Principal } from '../auth/principal';
import type { EntityLoaders } from '../db/entity-loaders';

/** What every resolver receives, built once per HTTP request or websocket operation. */
export interface RequestContext {
  requestId: string;
  /** Where the caller reaches this service (PUBLIC_URL, else the request's Host): the base of our own URLs. */
  baseUrl: string;
  /** null: no key was sent, or the key sent was unknown or revoked (see credentialsRejected). */
  principal: Principal | null;
  /** A key was sent but did not authenticate. */
  credentialsRejected: boolean;
  logger: Logger;
  loaders: EntityLoaders;
}
