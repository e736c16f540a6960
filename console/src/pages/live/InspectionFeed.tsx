import { useMemo } from 'react';
import { useQuery, useSubscription, type CombinedError } from 'urql';
import { graphql } from '../../gql';
import type { LiveFeedInspectionFragment } from '../../gql/graphql';
import { useSocketState, type SocketState } from '../../session/socket-state';
import { ProblemList } from '../../ui/ProblemList';
import { FeedEntry } from './FeedEntry';
import { FEED_CAPACITY, mergeFeed, prependLive } from './feed-entries';

graphql(`
  fragment LiveFeedInspection on Inspection {
    id
    createdAt
    score
    threshold
    normalizedScore
    isAnomalous
    overlayUrl
    regions {
      area
    }
    model {
      id
      name
      version
    }
    image {
      id
      originalFilename
    }
  }
`);

const LiveFeedRecentDocument = graphql(`
  query LiveFeedRecent($filter: InspectionFilter!, $first: Int!) {
    inspections(filter: $filter, first: $first) {
      edges {
        node {
          ...LiveFeedInspection
        }
      }
    }
  }
`);

const LiveFeedInspectionCreatedDocument = graphql(`
  subscription LiveFeedInspectionCreated($categoryId: ID!, $onlyAnomalous: Boolean!) {
    inspectionCreated(categoryId: $categoryId, onlyAnomalous: $onlyAnomalous) {
      ...LiveFeedInspection
    }
  }
`);

/** How many recent inspections the feed opens with, before live ones arrive. */
const RECENT_COUNT = 20;

/**
 * A category's inspections as they happen: the recent ones first, then every new one on top. Mounted
 * afresh (by key) for each category and filter, so that a feed never mixes two subscriptions.
 */
export function InspectionFeed({ categoryId, onlyAnomalous }: { categoryId: string; onlyAnomalous: boolean }) {
  const [recent] = useQuery({
    query: LiveFeedRecentDocument,
    variables: { filter: { categoryId, ...(onlyAnomalous ? { isAnomalous: true } : {}) }, first: RECENT_COUNT },
  });
  const [live] = useSubscription(
    { query: LiveFeedInspectionCreatedDocument, variables: { categoryId, onlyAnomalous } },
    (earlier: LiveFeedInspectionFragment[] | undefined, event) => prependLive(earlier, event.inspectionCreated),
  );
  const entries = useMemo(
    () => mergeFeed(live.data ?? [], recent.data?.inspections.edges.map((edge) => edge.node) ?? []),
    [live.data, recent.data],
  );

  return (
    <section className="live-feed">
      <div className="live-feed-header">
        <FeedStatus error={live.error} />
        <span className="muted" data-testid="live-count">
          {entries.length} shown (newest first, at most {FEED_CAPACITY})
        </span>
      </div>
      <ProblemList error={live.error} />
      <ProblemList error={recent.error} />
      {entries.length === 0 ? (
        <p className="muted live-feed-empty">
          {recent.fetching
            ? 'Loading recent inspections…'
            : `No ${onlyAnomalous ? 'anomalous ' : ''}inspection yet; new ones appear here as they are made.`}
        </p>
      ) : (
        <ol className="live-feed-list" data-testid="live-feed-list">
          {entries.map((inspection) => (
            <FeedEntry key={inspection.id} inspection={inspection} />
          ))}
        </ol>
      )}
    </section>
  );
}

const SOCKET_LABELS: Record<SocketState, string> = {
  idle: 'Connecting…',
  connecting: 'Connecting…',
  connected: 'Live: new inspections appear at once',
  reconnecting: 'Connection lost: reconnecting…',
};

/**
 * Whether the subscription stands: the shared websocket's state (it reconnects by itself and
 * graphql-ws subscribes again), unless the subscription itself ended with an error.
 */
function FeedStatus({ error }: { error?: CombinedError }) {
  const socket = useSocketState();
  const state = error ? 'failed' : socket === 'connected' ? 'live' : socket;
  return (
    <span className={`live-status live-status-${state}`} data-testid="live-status" data-state={state} role="status">
      <span className="live-status-dot" aria-hidden="true" />
      {error ? 'Not subscribed' : SOCKET_LABELS[socket]}
    </span>
  );
}
