import { Link, useParams, useSearchParams } from 'react-router-dom';
import { useQuery } from 'urql';
import { graphql } from '../../gql';
import type { CategoryImagesCategoryQuery } from '../../gql/graphql';
import { useSession } from '../../session/session';
import { ProblemList } from '../../ui/ProblemList';
import { ImageFilterBar } from './ImageFilterBar';
import { ImageGrid } from './ImageGrid';
import { filtersFromParams, filtersToParams, type ImageFilters } from './image-filters';
import './datasets.css';
import { ActiveModelLabel } from './ActiveModelLabel';

const CategoryImagesCategoryDocument = graphql(`
  query CategoryImagesCategory($id: ID!) {
    category(id: $id) {
      id
      name
      defectTypes
      trainCount: imageCount(split: TRAIN)
      testCount: imageCount(split: TEST)
      dataset {
        id
        name
      }
      activeModel {
        id
        name
        version
      }
    }
  }
`);

type Category = NonNullable<CategoryImagesCategoryQuery['category']>;

export function CategoryImagesPage() {
  const { categoryId = '' } = useParams();
  const [searchParams, setSearchParams] = useSearchParams();
  const filters = filtersFromParams(searchParams);
  const [{ data, error, fetching }] = useQuery({
    query: CategoryImagesCategoryDocument,
    variables: { id: categoryId },
  });
  const category = data?.category;

  const changeFilters = (next: ImageFilters) => setSearchParams(filtersToParams(next), { replace: true });

  if (!data) {
    return (
      <div className="category-images">
        {fetching && <p className="muted">Loading the category…</p>}
        <ProblemList error={error} />
      </div>
    );
  }
  if (!category) {
    return (
      <div className="category-images">
        <p className="error" role="alert">
          There is no category with id <code>{categoryId}</code>; it may have been deleted.
        </p>
        <Link to="/datasets">All datasets</Link>
      </div>
    );
  }
  return (
    <div className="category-images">
      <CategoryHeader category={category} />
      <ProblemList error={error} />
      <ImageFilterBar filters={filters} defectTypes={category.defectTypes} onChange={changeFilters} />
      {/* A new key for new filters: their pages start again from the first. */}
      <ImageGrid key={filtersToParams(filters).toString()} categoryId={category.id} filters={filters} />
    </div>
  );
}

function CategoryHeader({ category }: { category: Category }) {
  const { can } = useSession();
  return (
    <header className="category-images-header">
      <div>
        <p className="category-images-breadcrumb">
          <Link to="/datasets">Datasets</Link> / {category.dataset.name}
        </p>
        <h1>{category.name}</h1>
        <p className="category-images-summary">
          <span>
            Train <strong data-testid="split-count-train">{category.trainCount}</strong>
          </span>
          <span>
            Test <strong data-testid="split-count-test">{category.testCount}</strong>
          </span>
          <span>
            <ActiveModelLabel model={category.activeModel} />
          </span>
        </p>
      </div>
      {can('LABELER') && (
        <Link className="category-images-upload" to={`/upload?category=${category.id}`} data-testid="upload-link">
          Upload normal samples
        </Link>
      )}
    </header>
  );
}
