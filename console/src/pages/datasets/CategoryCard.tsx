import { Link } from 'react-router-dom';
import type { DatasetsListQuery } from '../../gql/graphql';
import { ActiveModelLabel } from './ActiveModelLabel';

type Category = DatasetsListQuery['datasets']['edges'][number]['node']['categories'][number];

export function CategoryCard({ category }: { category: Category }) {
  return (
    <article className="card datasets-category" data-testid="category-card" data-category-id={category.id}>
      <h3>
        <Link to={`/categories/${category.id}`}>{category.name}</Link>
      </h3>
      <dl className="datasets-counts">
        <Count label="Train" value={category.trainCount} testId="count-train" />
        <Count label="Test" value={category.testCount} testId="count-test" />
        <Count label="Test good" value={category.testGoodCount} testId="count-test-good" />
        <Count label="Defective" value={category.defectiveCount} testId="count-defective" />
      </dl>
      <p className="datasets-defect-types">
        {category.defectTypes.length === 0 ? (
          <span className="muted">No defect types</span>
        ) : (
          category.defectTypes.map((defectType) => (
            <span key={defectType} className="badge datasets-defect-type">
              {defectType}
            </span>
          ))
        )}
      </p>
      <p className="datasets-model" data-testid="active-model">
        <ActiveModelLabel model={category.activeModel} />
      </p>
      <Link className="datasets-open" to={`/categories/${category.id}`}>
        Browse images →
      </Link>
    </article>
  );
}

function Count({ label, value, testId }: { label: string; value: number; testId: string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd data-testid={testId}>{value}</dd>
    </div>
  );
}
