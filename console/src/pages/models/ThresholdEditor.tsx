import { useState, type FormEvent } from 'react';
import { useMutation } from 'urql';
import { graphql } from '../../gql';
import { ProblemList } from '../../ui/ProblemList';
import { parseThreshold } from './model-form';

const SetThresholdDocument = graphql(`
  mutation ModelsSetThreshold($id: ID!, $threshold: Float!) {
    setModelThreshold(id: $id, threshold: $threshold) {
      id
      threshold
    }
  }
`);

/** The raw-score threshold of a READY version, editable in place (ADMIN). */
export function ThresholdEditor({ modelId, threshold }: { modelId: string; threshold: number | null }) {
  const [text, setText] = useState(threshold === null ? '' : String(threshold));
  const [saved, save] = useMutation(SetThresholdDocument);
  const parsed = parseThreshold(text);
  const value = parsed.valid ? parsed.value : null;
  const unchanged = value === threshold;

  function submit(event: FormEvent) {
    event.preventDefault();
    if (value !== null) void save({ id: modelId, threshold: value });
  }

  return (
    <form className="models-threshold" onSubmit={submit}>
      <input
        type="number"
        step="any"
        value={text}
        onChange={(event) => setText(event.target.value)}
        aria-label="Threshold"
        aria-invalid={!parsed.valid}
        data-testid="model-threshold-input"
      />
      <button type="submit" disabled={value === null || unchanged || saved.fetching}>
        {saved.fetching ? 'Saving…' : 'Set'}
      </button>
      <ProblemList error={saved.error} />
    </form>
  );
}
