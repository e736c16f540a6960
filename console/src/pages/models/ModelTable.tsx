import { useEffect } from 'react';
import { useQuery, useSubscription } from 'urql';
import { graphql } from '../../gql';
import { useSession } from '../../session/session';
import { ProblemList } from '../../ui/ProblemList';
import { ModelRow } from './ModelRow';

const ModelsListDocument = graphql(`
  query ModelsList($categoryId: ID!, $first: Int!) {
    models(categoryId: $categoryId, first: $first) {
      totalCount
      edges {
        node {
          id
          version
          name
          status
          failureCode
          failureReason
          isActive
          threshold
          proposedThreshold
          inputWidth
          inputHeight
          byteSize
          createdAt
          validatedAt
          activatedAt
        }
      }
    }
  }
`);

const ModelsChangedDocument = graphql(`
  subscription ModelsChanged($categoryId: ID!) {
    modelVersionChanged(categoryId: $categoryId) {
      kind
      status
      model {
        id
      }
    }
  }
`);

/**
 * The newest versions shown: a category rarely has more, and with these fields a page of 100 would
 * pass the service's cost limit (QUERY_TOO_COMPLEX).
 */
const SHOWN = 50;

/** The category's versions, newest first, read again whenever one changes (from any process). */
export function ModelTable({ categoryId }: { categoryId: string }) {
  const { can } = useSession();
  const [{ data, error, fetching }, refetch] = useQuery({
    query: ModelsListDocument,
    variables: { categoryId, first: SHOWN },
  });
  const [changes] = useSubscription({ query: ModelsChangedDocument, variables: { categoryId } });
  const lastChange = changes.data?.modelVersionChanged;
  useEffect(() => {
    if (lastChange) refetch({ requestPolicy: 'network-only' });
  }, [lastChange, refetch]);

  const models = data?.models;
  return (
    <div className="card models-list">
      <h2>Versions</h2>
      <ProblemList error={error} />
      <ProblemList error={changes.error} />
      {fetching && !models ? <p className="muted">Loading model versions…</p> : null}
      {models && models.totalCount === 0 ? <p className="muted">No model registered for this category yet.</p> : null}
      {models && models.edges.length > 0 ? (
        <table data-testid="models-table">
          <thead>
            <tr>
              <th>Version</th>
              <th>Status</th>
              <th>Active</th>
              <th className="number">Threshold</th>
              <th>Input size</th>
              <th>Created</th>
              <th>Validated</th>
              {can('ADMIN') ? <th>Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {models.edges.map(({ node }) => (
              <ModelRow key={node.id} model={node} />
            ))}
          </tbody>
        </table>
      ) : null}
      {models && models.totalCount > models.edges.length ? (
        <p className="muted">
          Showing the newest {models.edges.length} of {models.totalCount} versions.
        </p>
      ) : null}
    </div>
  );
}
