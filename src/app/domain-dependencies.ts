import type { Logger } from 'pino';
import type { Config } from '../config/config';
import type { Database } from '../db/repositories';
import type { AppPubSub } from '../pubsub/pubsub';
import type { ObjectStore } from '../storage/object-store';

/** What every domain's wiring receives from the bootstrap; each adds what it needs of the others. */
export interface DomainDependencies {
  config: Config;
  /** The repositories: what services use instead of SQL of their own. */
  db: Database;
  objectStore: ObjectStore;
  pubSub: AppPubSub;
  logger: Logger;
}
