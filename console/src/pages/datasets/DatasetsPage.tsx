import { useQuery } from 'urql';
import { graphql } from '../../gql';
import type { DatasetsListQuery } from '../../gql/graphql';
import { ProblemList } from '../../ui/ProblemList';
import { dateTime } from '../../ui/format';
import { CategoryCard } from './CategoryCard';
import { useCursorPages } from './cursor-pages';
import './datasets.css';

const DATASETS_PER_PAGE = 10;

const DatasetsListDocument = graphql(`
  query DatasetsList($first: Int!, $after: String) {
    datasets(first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          id
          name
          description
          createdAt
          categories {
            id
            name
            defectTypes
            trainCount: imageCount(split: TRAIN)
            testCount: imageCount(split: TEST)
            testGoodCount: imageCount(split: TEST, good: true)
            defectiveCount: imageCount(good: false)
            activeModel {
              id
              name
              version
            }
          }
        }
      }
    }
  }
`);

type Dataset = DatasetsListQuery['datasets']['edges'][number]['node'];

export function DatasetsPage() {
  const { cursors, loadAfter } = useCursorPages();
  return (
    <div className="datasets">
      <h1>Datasets</h1>
      <p className="muted">Each category with its images per split and the model inspect uses for it.</p>
      {cursors.map((after, index) => (
        <DatasetsListPage
          key={after ?? 'first'}
          after={after}
          isLast={index === cursors.length - 1}
          onShowMore={loadAfter}
        />
      ))}
    </div>
  );
}

function DatasetsListPage({
  after,
  isLast,
  onShowMore,
}: {
  after: string | null;
  isLast: boolean;
  onShowMore(endCursor: string): void;
}) {
  const [{ data, error, fetching }, refetch] = useQuery({
    query: DatasetsListDocument,
    variables: { first: DATASETS_PER_PAGE, after },
  });
  const connection = data?.datasets;
  return (
    <>
      {fetching && !connection && <p className="muted">Loading datasets…</p>}
      <ProblemList error={error} />
      {error && (
        <button type="button" onClick={() => refetch({ requestPolicy: 'network-only' })}>
          Try again
        </button>
      )}
      {connection && after === null && connection.totalCount === 0 && (
        <p className="card muted">
          No datasets yet. An ADMIN creates one with <code>createDataset</code> and fills it with{' '}
          <code>importMvtecDataset</code> or uploads.
        </p>
      )}
      {connection?.edges.map(({ node }) => (
        <DatasetSection key={node.id} dataset={node} />
      ))}
      {isLast && connection?.pageInfo.hasNextPage && connection.pageInfo.endCursor && (
        <button type="button" onClick={() => onShowMore(connection.pageInfo.endCursor as string)}>
          Show more datasets
        </button>
      )}
    </>
  );
}

function DatasetSection({ dataset }: { dataset: Dataset }) {
  return (
    <section className="datasets-dataset" data-testid="dataset" data-dataset-id={dataset.id}>
      <header className="datasets-dataset-header">
        <h2>{dataset.name}</h2>
        <span className="muted">
          {dataset.categories.length} {dataset.categories.length === 1 ? 'category' : 'categories'} · created{' '}
          {dateTime(dataset.createdAt)}
        </span>
      </header>
      {dataset.description && <p className="datasets-description">{dataset.description}</p>}
      {dataset.categories.length === 0 ? (
        <p className="muted">No categories in this dataset yet.</p>
      ) : (
        <div className="datasets-categories">
          {dataset.categories.map((category) => (
            <CategoryCard key={category.id} category={category} />
          ))}
        </div>
      )}
    </section>
  );
}
