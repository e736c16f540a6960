import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router-dom';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../../gql';
import { ProblemList } from '../../ui/ProblemList';
import { dateTime } from '../../ui/format';
import { parseAuproLimit } from './evaluation-status';

const StartChoicesDocument = graphql(`
  query EvaluationsStartChoices($categoryId: ID!) {
    models(categoryId: $categoryId, first: 100) {
      edges {
        node {
          id
          name
          version
          status
          isActive
        }
      }
    }
    snapshots(categoryId: $categoryId) {
      id
      name
      imageCount
      createdAt
    }
  }
`);

const StartEvaluationDocument = graphql(`
  mutation EvaluationsStart($input: StartEvaluationInput!) {
    startEvaluation(input: $input) {
      id
      status
    }
  }
`);

const DEFAULT_AUPRO_LIMIT = '0.3';

/** Starts an evaluation of a READY model version, then opens its report. */
export function StartEvaluationForm({ categoryId }: { categoryId: string }) {
  const navigate = useNavigate();
  const [choices] = useQuery({ query: StartChoicesDocument, variables: { categoryId } });
  const [started, startEvaluation] = useMutation(StartEvaluationDocument);
  const [chosenModelId, setChosenModelId] = useState('');
  const [snapshotId, setSnapshotId] = useState('');
  const [auproLimitText, setAuproLimitText] = useState(DEFAULT_AUPRO_LIMIT);

  const readyModels = (choices.data?.models.edges ?? [])
    .map((edge) => edge.node)
    .filter((model) => model.status === 'READY');
  const snapshots = choices.data?.snapshots ?? [];
  const modelId = chosenModelId || (readyModels.find((model) => model.isActive) ?? readyModels[0])?.id || '';
  const auproLimit = parseAuproLimit(auproLimitText);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!modelId || auproLimit === null) return;
    const result = await startEvaluation({
      input: { categoryId, modelId, snapshotId: snapshotId || null, auproLimit },
    });
    const evaluation = result.data?.startEvaluation;
    if (evaluation) navigate(`/evaluations/${evaluation.id}`);
  }

  return (
    <form className="card evaluations-start" onSubmit={submit} aria-label="Start an evaluation">
      <h2>Start an evaluation</h2>
      {choices.fetching && !choices.data ? <p className="muted">Loading models and snapshots…</p> : null}
      {choices.data && readyModels.length === 0 ? (
        <p className="muted">This category has no READY model version to evaluate.</p>
      ) : null}
      <div className="evaluations-start-fields">
        <label>
          Model
          <select
            name="model"
            value={modelId}
            onChange={(event) => setChosenModelId(event.target.value)}
            disabled={readyModels.length === 0}
          >
            {readyModels.map((model) => (
              <option key={model.id} value={model.id}>
                {model.name} v{model.version}
                {model.isActive ? ' (active)' : ''}
              </option>
            ))}
          </select>
        </label>
        <label>
          Snapshot
          <select name="snapshot" value={snapshotId} onChange={(event) => setSnapshotId(event.target.value)}>
            <option value="">New snapshot of the live images</option>
            {snapshots.map((snapshot) => (
              <option key={snapshot.id} value={snapshot.id}>
                {snapshot.name} ({snapshot.imageCount} images, {dateTime(snapshot.createdAt)})
              </option>
            ))}
          </select>
        </label>
        <label>
          AUPRO FPR limit
          <input
            name="auproLimit"
            type="number"
            min="0"
            max="1"
            step="any"
            value={auproLimitText}
            onChange={(event) => setAuproLimitText(event.target.value)}
            aria-invalid={auproLimit === null}
          />
        </label>
        <button type="submit" className="primary" disabled={!modelId || auproLimit === null || started.fetching}>
          {started.fetching ? 'Starting…' : 'Start evaluation'}
        </button>
      </div>
      {auproLimit === null ? <p className="error">The AUPRO FPR limit must be above 0 and at most 1.</p> : null}
      <ProblemList error={choices.error} />
      <ProblemList error={started.error} />
    </form>
  );
}
