import { createPubSub } from '@graphql-yoga/subscription';
import type { PostgresEventTarget } from './postgres-event-target';

/**
 * Topics and payloads of every cross-process event. Payloads stay small (ids, counters):
 * subscribers reload what they show from the database.
 */
export interface Topics {
  [topic: string]: [] | [unknown] | [string | number, unknown];
  API_KEY_EVENT: [{ kind: 'CREATED' | 'REVOKED'; apiKeyId: string }];
}

export type AppPubSub = ReturnType<typeof createAppPubSub>;

export function createAppPubSub(eventTarget: PostgresEventTarget) {
  return createPubSub<Topics>({ eventTarget });
}
