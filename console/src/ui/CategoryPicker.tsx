import { useCallback } from 'react';
import { useSearchParams } from 'react-router-dom';
import { useQuery } from 'urql';
import { graphql } from '../gql';
import { ProblemList } from './ProblemList';

const CategoryChoicesDocument = graphql(`
  query CategoryChoices {
    datasets(first: 100) {
      edges {
        node {
          id
          name
          categories {
            id
            name
          }
        }
      }
    }
  }
`);

const REMEMBERED = 'inspection-console.category';

/**
 * The category a page works on, kept in the URL (`?category=`) so that a link reopens the same view,
 * and remembered for the next page opened without one.
 */
export function useSelectedCategory(): [string | null, (categoryId: string) => void] {
  const [searchParams, setSearchParams] = useSearchParams();
  const categoryId = searchParams.get('category') ?? sessionStorage.getItem(REMEMBERED);
  const select = useCallback(
    (next: string) => {
      sessionStorage.setItem(REMEMBERED, next);
      setSearchParams(
        (previous) => {
          const params = new URLSearchParams(previous);
          params.set('category', next);
          return params;
        },
        { replace: true },
      );
    },
    [setSearchParams],
  );
  return [categoryId, select];
}

/** A select of every dataset's categories ("dataset / category"). */
export function CategoryPicker({ value, onChange }: { value: string | null; onChange(categoryId: string): void }) {
  const [{ data, error, fetching }] = useQuery({ query: CategoryChoicesDocument });
  const options =
    data?.datasets.edges.flatMap(({ node: dataset }) =>
      dataset.categories.map((category) => ({ id: category.id, label: `${dataset.name} / ${category.name}` })),
    ) ?? [];
  return (
    <label className="category-picker">
      Category
      <select
        name="category"
        value={value && options.some((option) => option.id === value) ? value : ''}
        onChange={(event) => onChange(event.target.value)}
        disabled={fetching && options.length === 0}
      >
        <option value="" disabled>
          {options.length === 0 && !fetching ? 'No categories yet' : 'Choose a category'}
        </option>
        {options.map((option) => (
          <option key={option.id} value={option.id}>
            {option.label}
          </option>
        ))}
      </select>
      <ProblemList error={error} />
    </label>
  );
}
