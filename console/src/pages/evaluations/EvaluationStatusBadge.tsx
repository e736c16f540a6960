import type { EvaluationStatus } from '../../gql/graphql';

const TONES: Record<EvaluationStatus, string> = {
  QUEUED: 'tone-queued',
  RUNNING: 'tone-busy',
  SUCCEEDED: 'tone-good',
  FAILED: 'tone-bad',
  CANCELLED: 'tone-neutral',
};

export function EvaluationStatusBadge({ status }: { status: EvaluationStatus }) {
  return (
    <span className={`badge ${TONES[status]}`} data-testid="evaluation-status">
      {status}
    </span>
  );
}
