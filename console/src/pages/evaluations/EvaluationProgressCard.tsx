import type { CombinedError } from 'urql';
import { useMutation } from 'urql';
import { graphql } from '../../gql';
import type { EvaluationStatus } from '../../gql/graphql';
import { useSession } from '../../session/session';
import { ProblemList } from '../../ui/ProblemList';
import { progressText } from './evaluation-status';

const CancelEvaluationDocument = graphql(`
  mutation EvaluationCancel($id: ID!) {
    cancelEvaluation(id: $id) {
      id
      status
    }
  }
`);

interface EvaluationProgressCardProps {
  evaluationId: string;
  status: EvaluationStatus;
  processed: number;
  total: number;
  /** The progress subscription's error, if it broke. */
  error: CombinedError | undefined;
}

/** The live progress of a QUEUED or RUNNING evaluation, and (LABELER and up) a way to cancel it. */
export function EvaluationProgressCard({ evaluationId, status, processed, total, error }: EvaluationProgressCardProps) {
  const { can } = useSession();
  const [cancelled, cancel] = useMutation(CancelEvaluationDocument);
  return (
    <div className="card evaluations-progress">
      <div className="evaluations-progress-line">
        <span>{progressText(status, processed, total)}</span>
        {can('LABELER') ? (
          <button type="button" onClick={() => void cancel({ id: evaluationId })} disabled={cancelled.fetching}>
            {cancelled.fetching ? 'Cancelling…' : 'Cancel evaluation'}
          </button>
        ) : null}
      </div>
      <progress
        data-testid="evaluation-progress"
        data-status={status}
        max={Math.max(total, 1)}
        value={processed}
        aria-label="Evaluation progress"
      />
      <ProblemList error={error} />
      <ProblemList error={cancelled.error} />
    </div>
  );
}
