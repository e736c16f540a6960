import { useState, type ReactNode } from 'react';
import { Link } from 'react-router-dom';
import { useQuery, useSubscription } from 'urql';
import { graphql } from '../../gql';
import type { EvaluationsListRowFragment } from '../../gql/graphql';
import { ProblemList } from '../../ui/ProblemList';
import { dateTime, metric } from '../../ui/format';
import { EvaluationStatusBadge } from './EvaluationStatusBadge';
import { isInProgress, progressText } from './evaluation-status';

graphql(`
  fragment EvaluationsListRow on Evaluation {
    id
    status
    processed
    total
    imageAuroc
    pixelAuroc
    aupro
    imageF1Max
    createdAt
    model {
      id
      name
      version
    }
    snapshot {
      id
      name
    }
  }
`);

const EvaluationsListDocument = graphql(`
  query EvaluationsList($categoryId: ID!, $first: Int!, $after: String) {
    evaluations(categoryId: $categoryId, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          ...EvaluationsListRow
        }
      }
    }
  }
`);

const EvaluationsRowProgressDocument = graphql(`
  subscription EvaluationsRowProgress($id: ID!) {
    evaluationProgress(id: $id) {
      ...EvaluationsListRow
    }
  }
`);

const PAGE_SIZE = 20;
const COLUMNS = 8;

/** The category's evaluations, a page at a time ("Show more" appends the next one). */
export function EvaluationList({ categoryId }: { categoryId: string }) {
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  return (
    <div className="card evaluations-list">
      <h2>Evaluations of this category</h2>
      <table data-testid="evaluations-table">
        <thead>
          <tr>
            <th>Status</th>
            <th>Model</th>
            <th>Snapshot</th>
            <th className="number">Image AUROC</th>
            <th className="number">Pixel AUROC</th>
            <th className="number">AUPRO</th>
            <th className="number">Image F1-max</th>
            <th>Created</th>
          </tr>
        </thead>
        {cursors.map((after, index) => (
          <EvaluationListPage
            key={after ?? 'first'}
            categoryId={categoryId}
            after={after}
            isLastPage={index === cursors.length - 1}
            onShowMore={(cursor) => setCursors((previous) => [...previous, cursor])}
          />
        ))}
      </table>
    </div>
  );
}

function EvaluationListPage({
  categoryId,
  after,
  isLastPage,
  onShowMore,
}: {
  categoryId: string;
  after: string | null;
  isLastPage: boolean;
  onShowMore(cursor: string): void;
}) {
  const [{ data, error, fetching }] = useQuery({
    query: EvaluationsListDocument,
    variables: { categoryId, first: PAGE_SIZE, after },
  });
  const connection = data?.evaluations;
  return (
    <tbody>
      {connection?.edges.map(({ node }) => (
        <EvaluationRow key={node.id} evaluation={node} />
      ))}
      {fetching && !connection ? <MessageRow>Loading evaluations…</MessageRow> : null}
      {connection && connection.totalCount === 0 ? <MessageRow>No evaluations of this category yet.</MessageRow> : null}
      {error ? (
        <MessageRow>
          <ProblemList error={error} />
        </MessageRow>
      ) : null}
      {isLastPage && connection?.pageInfo.hasNextPage && connection.pageInfo.endCursor ? (
        <MessageRow>
          <button type="button" onClick={() => onShowMore(connection.pageInfo.endCursor as string)}>
            Show more ({connection.totalCount} in all)
          </button>
        </MessageRow>
      ) : null}
    </tbody>
  );
}

function MessageRow({ children }: { children: ReactNode }) {
  return (
    <tr>
      <td colSpan={COLUMNS} className="muted">
        {children}
      </td>
    </tr>
  );
}

/** One evaluation; while it runs, its row follows evaluationProgress (and shows its metrics once done). */
function EvaluationRow({ evaluation: listed }: { evaluation: EvaluationsListRowFragment }) {
  const [progress] = useSubscription({
    query: EvaluationsRowProgressDocument,
    variables: { id: listed.id },
    pause: !isInProgress(listed.status),
  });
  const evaluation = progress.data?.evaluationProgress ?? listed;
  return (
    <tr data-testid="evaluation-row" data-evaluation-id={evaluation.id}>
      <td>
        <Link to={`/evaluations/${evaluation.id}`}>
          <EvaluationStatusBadge status={evaluation.status} />
        </Link>
        {isInProgress(evaluation.status) ? (
          <span className="muted evaluations-row-progress">
            {progressText(evaluation.status, evaluation.processed, evaluation.total)}
          </span>
        ) : null}
      </td>
      <td>
        <Link to={`/evaluations/${evaluation.id}`}>
          {evaluation.model.name} v{evaluation.model.version}
        </Link>
      </td>
      <td>{evaluation.snapshot?.name ?? <span className="muted">deleted</span>}</td>
      <td className="number">{metric(evaluation.imageAuroc)}</td>
      <td className="number">{metric(evaluation.pixelAuroc)}</td>
      <td className="number">{metric(evaluation.aupro)}</td>
      <td className="number">{metric(evaluation.imageF1Max)}</td>
      <td>{dateTime(evaluation.createdAt)}</td>
    </tr>
  );
}
