import { useQuery } from 'urql';
import { graphql } from '../../gql';
import type { EvaluationMisclassifiedImageFragment } from '../../gql/graphql';
import { ProblemList } from '../../ui/ProblemList';
import { score } from '../../ui/format';

graphql(`
  fragment EvaluationMisclassifiedImage on EvaluationImage {
    score
    overlayUrl
    image {
      id
      originalFilename
      defectType
    }
  }
`);

const MisclassifiedDocument = graphql(`
  query EvaluationMisclassified($id: ID!, $first: Int!) {
    evaluation(id: $id) {
      id
      falsePositives: images(misclassified: true, good: true, orderBy: SCORE_DESC, first: $first) {
        totalCount
        edges {
          node {
            ...EvaluationMisclassifiedImage
          }
        }
      }
      falseNegatives: images(misclassified: true, good: false, orderBy: SCORE_ASC, first: $first) {
        totalCount
        edges {
          node {
            ...EvaluationMisclassifiedImage
          }
        }
      }
    }
  }
`);

const SHOWN = 6;

/** The good images scored highest and the defective ones scored lowest that the F1-max threshold gets wrong. */
export function MisclassifiedImages({ evaluationId, hasThreshold }: { evaluationId: string; hasThreshold: boolean }) {
  const [{ data, error, fetching }] = useQuery({
    query: MisclassifiedDocument,
    variables: { id: evaluationId, first: SHOWN },
    pause: !hasThreshold,
  });
  if (!hasThreshold)
    return <p className="muted">Without defective images there is no F1-max threshold, so nothing is misclassified.</p>;
  const evaluation = data?.evaluation;
  return (
    <>
      <ProblemList error={error} />
      {fetching && !evaluation ? <p className="muted">Loading misclassified images…</p> : null}
      {evaluation ? (
        <>
          <MisclassifiedGallery
            title="Worst false positives"
            description="good images scored at or above the threshold, highest first"
            testId="false-positives"
            totalCount={evaluation.falsePositives.totalCount}
            images={evaluation.falsePositives.edges.map((edge) => edge.node)}
          />
          <MisclassifiedGallery
            title="Worst false negatives"
            description="defective images scored below the threshold, lowest first"
            testId="false-negatives"
            totalCount={evaluation.falseNegatives.totalCount}
            images={evaluation.falseNegatives.edges.map((edge) => edge.node)}
          />
        </>
      ) : null}
    </>
  );
}

interface MisclassifiedGalleryProps {
  title: string;
  description: string;
  testId: string;
  totalCount: number;
  images: EvaluationMisclassifiedImageFragment[];
}

function MisclassifiedGallery({ title, description, testId, totalCount, images }: MisclassifiedGalleryProps) {
  return (
    <section data-testid={testId} data-total={totalCount}>
      <h2>
        {title} <span className="muted evaluations-gallery-count">{totalCount} in all</span>
      </h2>
      <p className="muted">{description}</p>
      {images.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <ul className="evaluations-gallery">
          {images.map((result) => {
            const filename = result.image?.originalFilename ?? 'deleted image';
            return (
              <li key={result.overlayUrl} className="card evaluations-thumbnail" data-testid="misclassified-image">
                <img src={result.overlayUrl} alt={`Anomaly overlay of ${filename}`} />
                <span className="evaluations-thumbnail-name" title={filename}>
                  {filename}
                </span>
                <span>
                  score <strong>{score(result.score)}</strong>
                  {result.image?.defectType ? <span className="badge">{result.image.defectType}</span> : null}
                </span>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
