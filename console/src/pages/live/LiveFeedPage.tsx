import { useState } from 'react';
import { CategoryPicker, useSelectedCategory } from '../../ui/CategoryPicker';
import { InspectionFeed } from './InspectionFeed';
import './live.css';

/** Every new inspection of a category, from any client, as it is made. */
export function LiveFeedPage() {
  const [categoryId, selectCategory] = useSelectedCategory();
  const [onlyAnomalous, setOnlyAnomalous] = useState(false);
  return (
    <div className="live-page">
      <h1>Live feed</h1>
      <div className="toolbar">
        <CategoryPicker value={categoryId} onChange={selectCategory} />
        <label className="live-toggle">
          <input
            type="checkbox"
            checked={onlyAnomalous}
            onChange={(event) => setOnlyAnomalous(event.target.checked)}
            data-testid="live-only-anomalous"
          />
          Anomalous only
        </label>
      </div>
      {categoryId ? (
        <InspectionFeed key={`${categoryId}:${onlyAnomalous}`} categoryId={categoryId} onlyAnomalous={onlyAnomalous} />
      ) : (
        <p className="muted">Choose a category to follow its inspections as they are made.</p>
      )}
    </div>
  );
}
