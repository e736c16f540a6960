import { createPubSub, type PubSub } from '@graphql-yoga/subscription';
import type { NotificationConnection, PostgresEventTarget } from './postgres-event-target';

/**
 * Topics and payloads of every cross-process event. Payloads stay small (ids, counters):
 * subscribers reload what they show from the database.
 */
export interface Topics {
  [topic: string]: [] | [unknown] | [string | number, unknown];
  API_KEY_EVENT: [{ kind: 'CREATED' | 'REVOKED'; apiKeyId: string }];
  /** An import job's row changed (status or progress); routed by job id. */
  IMPORT_JOB_UPDATED: [importJobId: string, { importJobId: string }];
  /** A model version was registered, validated, activated or re-thresholded. */
  MODEL_VERSION_CHANGED: [
    {
      modelId: string;
      categoryId: string;
      kind: 'REGISTERED' | 'READY' | 'FAILED' | 'ACTIVATED' | 'THRESHOLD_CHANGED';
      status: 'VALIDATING' | 'READY' | 'FAILED';
    },
  ];
  /** A new inspection row; subscribers filter on the category and the verdict, then load the row. */
  INSPECTION_CREATED: [{ inspectionId: string; categoryId: string; isAnomalous: boolean }];
  /** An evaluation's row changed (status, progress, metrics); routed by its id, at most about once a second while it runs. */
  EVALUATION_UPDATED: [evaluationId: string, { evaluationId: string }];
}

export type AppPubSub = PubSub<Topics> & {
  /**
   * Losses and returns of the connection events arrive on (events sent meanwhile were missed).
   * Absent for a pub/sub within one process (tests), which has no connection to lose.
   */
  connection?: NotificationConnection;
};

export function createAppPubSub(eventTarget: PostgresEventTarget): AppPubSub {
  return {
    ...createPubSub<Topics>({ eventTarget }),
    connection: eventTarget,
  };
}
