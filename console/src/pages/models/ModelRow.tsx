import { useMutation } from 'urql';
import { graphql } from '../../gql';
import type { ModelStatus, ModelsListQuery } from '../../gql/graphql';
import { useSession } from '../../session/session';
import { ProblemList } from '../../ui/ProblemList';
import { bytes, dateTime, score } from '../../ui/format';
import { ThresholdEditor } from './ThresholdEditor';

const STATUS_TONES: Record<ModelStatus, string> = { READY: 'tone-good', VALIDATING: 'tone-busy', FAILED: 'tone-bad' };

export type ListedModel = ModelsListQuery['models']['edges'][number]['node'];

const ActivateModelDocument = graphql(`
  mutation ModelsActivate($id: ID!) {
    activateModel(id: $id) {
      id
      isActive
      activatedAt
    }
  }
`);

export function ModelRow({ model }: { model: ListedModel }) {
  const { can } = useSession();
  const [activation, activate] = useMutation(ActivateModelDocument);
  const isAdmin = can('ADMIN');
  return (
    <tr data-testid="model-row" data-model-id={model.id} className={model.isActive ? 'models-row-active' : undefined}>
      <td>
        <strong>
          {model.name} v{model.version}
        </strong>
        <div className="muted models-subtext">{bytes(model.byteSize)}</div>
      </td>
      <td>
        <span className={`badge ${STATUS_TONES[model.status]}`} data-testid="model-status">
          {model.status}
        </span>
        {model.status === 'FAILED' ? (
          <div className="models-failure" role="alert">
            <code data-testid="model-failure-code">{model.failureCode ?? 'FAILED'}</code>{' '}
            <span data-testid="model-failure-reason">{model.failureReason ?? 'No reason was recorded.'}</span>
          </div>
        ) : null}
      </td>
      <td>
        {model.isActive ? (
          <span className="badge models-active" data-testid="model-active" title={`since ${dateTime(model.activatedAt)}`}>
            Active
          </span>
        ) : null}
      </td>
      <td className="number">
        {isAdmin && model.status === 'READY' ? (
          <ThresholdEditor key={model.threshold ?? 'none'} modelId={model.id} threshold={model.threshold} />
        ) : (
          <span data-testid="model-threshold">{score(model.threshold)}</span>
        )}
        {model.proposedThreshold !== null && model.proposedThreshold !== model.threshold ? (
          <div className="muted models-subtext">proposed {score(model.proposedThreshold)}</div>
        ) : null}
      </td>
      <td>{model.inputWidth && model.inputHeight ? `${model.inputWidth}×${model.inputHeight}` : '—'}</td>
      <td>{dateTime(model.createdAt)}</td>
      <td>{dateTime(model.validatedAt)}</td>
      {isAdmin ? (
        <td>
          {model.status === 'READY' && !model.isActive ? (
            <button type="button" onClick={() => void activate({ id: model.id })} disabled={activation.fetching}>
              {activation.fetching ? 'Activating…' : 'Activate'}
            </button>
          ) : null}
          <ProblemList error={activation.error} />
        </td>
      ) : null}
    </tr>
  );
}
