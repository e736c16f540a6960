import { useMutation } from 'urql';
import { graphql } from '../../gql';
import { useSession } from '../../session/session';
import { ProblemList } from '../../ui/ProblemList';
import { score } from '../../ui/format';
import type { ReportedEvaluation } from './EvaluationReport';

const ApplyThresholdDocument = graphql(`
  mutation EvaluationApplyThreshold($evaluationId: ID!) {
    applyEvaluationThreshold(evaluationId: $evaluationId) {
      id
      name
      version
      threshold
    }
  }
`);

/** The model's threshold next to the evaluation's F1-max one; an ADMIN may make the latter the model's. */
export function ApplyThreshold({ evaluation }: { evaluation: ReportedEvaluation }) {
  const { can } = useSession();
  const [applied, apply] = useMutation(ApplyThresholdDocument);
  const { model, imageF1Threshold } = evaluation;
  const updatedModel = applied.data?.applyEvaluationThreshold;
  const inUse = imageF1Threshold !== null && model.threshold === imageF1Threshold;
  return (
    <div className="evaluations-threshold">
      <p>
        Threshold of {model.name} v{model.version}:{' '}
        <strong data-testid="model-threshold">{score(model.threshold)}</strong>
        {inUse ? <span className="muted"> (this evaluation’s F1-max threshold)</span> : null}
      </p>
      {can('ADMIN') && imageF1Threshold !== null ? (
        <button
          type="button"
          className="primary"
          onClick={() => void apply({ evaluationId: evaluation.id })}
          disabled={applied.fetching || inUse}
        >
          {applied.fetching ? 'Applying…' : 'Use this threshold'}
        </button>
      ) : null}
      {updatedModel ? (
        <p className="good" role="status" data-testid="applied-threshold">
          {updatedModel.name} v{updatedModel.version} now uses threshold {score(updatedModel.threshold)}.
        </p>
      ) : null}
      <ProblemList error={applied.error} />
    </div>
  );
}
