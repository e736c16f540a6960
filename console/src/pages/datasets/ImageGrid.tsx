import { useQuery } from 'urql';
import { graphql } from '../../gql';
import type { CategoryImagesListQueryVariables } from '../../gql/graphql';
import { ProblemList } from '../../ui/ProblemList';
import { useCursorPages } from './cursor-pages';
import { imagesArguments, type ImageFilters } from './image-filters';
import { ImageTile } from './ImageTile';
import { InfiniteScrollSentinel } from './InfiniteScrollSentinel';

/** Tiles per request; the next page loads when the end of the grid scrolls into view. */
const IMAGES_PER_PAGE = 20;

const CategoryImagesListDocument = graphql(`
  query CategoryImagesList(
    $categoryId: ID!
    $split: Split
    $good: Boolean
    $defectType: String
    $first: Int!
    $after: String
  ) {
    images(categoryId: $categoryId, split: $split, good: $good, defectType: $defectType, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          id
          originalFilename
          split
          good
          defectType
          width
          height
          url
          maskUrl
        }
      }
    }
  }
`);

export function ImageGrid({ categoryId, filters }: { categoryId: string; filters: ImageFilters }) {
  const { cursors, loadAfter } = useCursorPages();
  const variables = { categoryId, ...imagesArguments(filters), first: IMAGES_PER_PAGE };
  // The same operation as the first page's: urql answers both from one request.
  const [{ data: firstPage }] = useQuery({
    query: CategoryImagesListDocument,
    variables: { ...variables, after: null },
  });
  const totalCount = firstPage?.images.totalCount;
  return (
    <section className="category-images-results">
      {totalCount !== undefined && (
        <p className="muted" data-testid="images-total">
          {totalCount} {totalCount === 1 ? 'image matches' : 'images match'}
          {totalCount > 0 && ' · hover a defective image to see its ground-truth mask'}
        </p>
      )}
      {totalCount === 0 && <p className="card muted">No images match these filters.</p>}
      <div className="category-images-grid" data-testid="image-grid">
        {cursors.map((after, index) => (
          <ImageGridPage
            key={after ?? 'first'}
            variables={{ ...variables, after }}
            isLast={index === cursors.length - 1}
            onReachEnd={loadAfter}
          />
        ))}
      </div>
    </section>
  );
}

function ImageGridPage({
  variables,
  isLast,
  onReachEnd,
}: {
  variables: CategoryImagesListQueryVariables;
  isLast: boolean;
  onReachEnd(endCursor: string): void;
}) {
  const [{ data, error, fetching }, refetch] = useQuery({ query: CategoryImagesListDocument, variables });
  const connection = data?.images;
  const endCursor = connection?.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null;
  return (
    <>
      {connection?.edges.map(({ node }) => (
        <ImageTile key={node.id} image={node} />
      ))}
      {fetching && !connection && (
        <p className="category-images-status muted" aria-live="polite">
          Loading images…
        </p>
      )}
      {error && (
        <div className="category-images-status">
          <ProblemList error={error} />
          <button type="button" onClick={() => refetch({ requestPolicy: 'network-only' })}>
            Try again
          </button>
        </div>
      )}
      {isLast && endCursor && <InfiniteScrollSentinel onVisible={() => onReachEnd(endCursor)} />}
    </>
  );
}
