import type { Logger } from 'pino';
import type { Principal } from '../auth/principal';
import type { EntityLoaders } from '../db/entity-loaders';

/** What every resolver receives, built once per HTTP request or websocket operation. */
export interface RequestContext {
  requestId: string;
  /** null: no key was sent, or the key sent was unknown or revoked (see credentialsRejected). */
  principal: Principal | null;
  /** A key was sent but did not authenticate. */
  credentialsRejected: boolean;
  logger: Logger;
  loaders: EntityLoaders;
}
