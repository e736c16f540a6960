import type { Split } from '../../gql/graphql';
import { hasFilters, NO_FILTERS, normalized, type ImageFilters, type ImageLabel } from './image-filters';

export function ImageFilterBar({
  filters,
  defectTypes,
  onChange,
}: {
  filters: ImageFilters;
  defectTypes: readonly string[];
  onChange(next: ImageFilters): void;
}) {
  const change = (patch: Partial<ImageFilters>) => onChange(normalized({ ...filters, ...patch }));
  return (
    <div className="toolbar category-images-filters">
      <label>
        Split
        <select
          name="split"
          value={filters.split ?? ''}
          onChange={(event) => change({ split: (event.target.value || null) as Split | null })}
        >
          <option value="">Train and test</option>
          <option value="TRAIN">Train</option>
          <option value="TEST">Test</option>
        </select>
      </label>
      <label>
        Label
        <select
          name="label"
          value={filters.label ?? ''}
          onChange={(event) => {
            const label = (event.target.value || null) as ImageLabel | null;
            change({ label, defectType: label === 'defective' ? filters.defectType : null });
          }}
        >
          <option value="">Good and defective</option>
          <option value="good">Good</option>
          <option value="defective">Defective</option>
        </select>
      </label>
      <label>
        Defect type
        <select
          name="defectType"
          value={filters.defectType ?? ''}
          disabled={filters.label === 'good' || defectTypes.length === 0}
          onChange={(event) => change({ defectType: event.target.value || null })}
        >
          <option value="">Any defect type</option>
          {defectTypes.map((defectType) => (
            <option key={defectType} value={defectType}>
              {defectType}
            </option>
          ))}
        </select>
      </label>
      {hasFilters(filters) && (
        <button type="button" onClick={() => onChange(NO_FILTERS)}>
          Clear filters
        </button>
      )}
    </div>
  );
}
