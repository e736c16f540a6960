import { useQuery } from 'urql';
import { graphql } from '../../gql';
import type { InspectCategoryModelQuery } from '../../gql/graphql';
import { CategoryPicker, useSelectedCategory } from '../../ui/CategoryPicker';
import { bytes, score as formatScore } from '../../ui/format';
import { ProblemList } from '../../ui/ProblemList';
import { ImageDropZone } from './ImageDropZone';
import { InspectionResult } from './InspectionResult';
import { useInspectUpload, type InspectState } from './useInspectUpload';
import './inspect.css';

const InspectCategoryModelDocument = graphql(`
  query InspectCategoryModel($categoryId: ID!) {
    category(id: $categoryId) {
      id
      name
      activeModel {
        id
        name
        version
        threshold
      }
    }
  }
`);

type ActiveModel = NonNullable<NonNullable<InspectCategoryModelQuery['category']>['activeModel']>;

/** Inspect one image that is not in a dataset with a category's active model. */
export function InspectPage() {
  const [categoryId, selectCategory] = useSelectedCategory();
  const [{ data, error, fetching }] = useQuery({
    query: InspectCategoryModelDocument,
    variables: { categoryId: categoryId ?? '' },
    pause: !categoryId,
  });
  const [state, inspectFile] = useInspectUpload();
  const activeModel = data?.category?.activeModel ?? null;
  const busy = state.phase === 'uploading' || state.phase === 'inspecting';

  return (
    <div className="inspect-page">
      <h1>Inspect an image</h1>
      <div className="toolbar">
        <CategoryPicker value={categoryId} onChange={selectCategory} />
        {categoryId && (
          <ActiveModelNote
            model={activeModel}
            loading={fetching && !data}
            categoryFound={data ? data.category !== null : true}
          />
        )}
      </div>
      <ProblemList error={error} />
      {categoryId ? (
        <ImageDropZone disabled={!activeModel || busy} onFile={(file) => void inspectFile(file, categoryId)} />
      ) : (
        <p className="muted">Choose a category: its active model inspects the image.</p>
      )}
      <InspectProgress state={state} />
      {state.phase === 'done' && (
        <InspectionResult inspection={state.inspection} timing={state.timing} fileName={state.file.name} />
      )}
    </div>
  );
}

function ActiveModelNote({
  model,
  loading,
  categoryFound,
}: {
  model: ActiveModel | null;
  loading: boolean;
  categoryFound: boolean;
}) {
  if (loading) return <p className="muted inspect-model">Loading the category’s model…</p>;
  if (!categoryFound)
    return (
      <p className="error inspect-model" role="alert">
        This category no longer exists.
      </p>
    );
  if (!model)
    return (
      <p className="error inspect-model" role="alert" data-testid="inspect-no-model">
        This category has no active model, so nothing can be inspected. An ADMIN activates one on the Models page.
      </p>
    );
  return (
    <p className="inspect-model" data-testid="inspect-active-model">
      Active model <strong>{model.name}</strong> v{model.version}
      {model.threshold !== null && model.threshold !== undefined && (
        <span className="muted"> · threshold {formatScore(model.threshold)}</span>
      )}
    </p>
  );
}

function InspectProgress({ state }: { state: InspectState }) {
  switch (state.phase) {
    case 'uploading':
      return (
        <div className="inspect-progress" role="status">
          Uploading {state.file.name} ({bytes(state.file.size)})…
          <progress value={state.fraction} max={1} />
        </div>
      );
    case 'inspecting':
      return (
        <div className="inspect-progress" role="status">
          Inspecting {state.file.name}…
        </div>
      );
    case 'failed':
      return (
        <div className="inspect-progress" data-testid="inspect-failed">
          <p>{state.file.name} was not inspected:</p>
          <ProblemList problems={state.problems} />
        </div>
      );
    default:
      return null;
  }
}
