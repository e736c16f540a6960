import type { LiveFeedInspectionFragment } from '../../gql/graphql';
import { dateTime, metric, score as formatScore } from '../../ui/format';

/** One inspection of the feed: its overlay, verdict, score, time and model. */
export function FeedEntry({ inspection }: { inspection: LiveFeedInspectionFragment }) {
  const createdAt = new Date(inspection.createdAt);
  return (
    <li
      className={`live-entry ${inspection.isAnomalous ? 'live-entry-anomalous' : ''}`}
      data-testid="live-entry"
      data-inspection-id={inspection.id}
    >
      <a href={inspection.overlayUrl} target="_blank" rel="noreferrer" className="live-entry-thumbnail">
        <img src={inspection.overlayUrl} alt="Overlay" loading="lazy" data-testid="live-entry-thumbnail" />
      </a>
      <div className="live-entry-body">
        <div className="live-entry-line">
          <span
            className={`badge ${inspection.isAnomalous ? 'anomalous' : 'normal'}`}
            data-testid="live-entry-decision"
          >
            {inspection.isAnomalous ? 'ANOMALOUS' : 'NORMAL'}
          </span>
          <time dateTime={inspection.createdAt} title={dateTime(inspection.createdAt)}>
            {createdAt.toLocaleTimeString()}
          </time>
        </div>
        <div className="live-entry-line">
          <span>
            score <strong data-testid="live-entry-score">{formatScore(inspection.score)}</strong>
          </span>
          <span className="muted">threshold {formatScore(inspection.threshold)}</span>
          <span className="muted">normalised {metric(inspection.normalizedScore)}</span>
        </div>
        <div className="live-entry-line muted">
          <span>
            {inspection.model.name} v{inspection.model.version}
          </span>
          <span>{inspection.image ? inspection.image.originalFilename : 'uploaded image'}</span>
          <span>
            {inspection.regions.length} {inspection.regions.length === 1 ? 'region' : 'regions'}
          </span>
        </div>
      </div>
    </li>
  );
}
