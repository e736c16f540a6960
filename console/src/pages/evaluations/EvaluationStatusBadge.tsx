import type { EvaluationStatus } from '../../gql/graphql';

export function EvaluationStatusBadge({ status }: { status: EvaluationStatus }) {
  return (
    <span
      className={`badge evaluations-status evaluations-status-${status.toLowerCase()}`}
      data-testid="evaluation-status"
    >
      {status}
    </span>
  );
}
