import { score as formatScore } from '../../ui/format';
import { gaugePercent, gaugeScale } from './score-gauge';

/** The raw score as a bar against the threshold marker: past the marker is anomalous. */
export function ScoreGauge({
  score,
  threshold,
  isAnomalous,
}: {
  score: number;
  threshold: number;
  isAnomalous: boolean;
}) {
  const scale = gaugeScale(score, threshold);
  const thresholdAt = gaugePercent(threshold, scale);
  return (
    <div
      className="inspect-gauge"
      role="meter"
      aria-label="Anomaly score against the threshold"
      aria-valuemin={scale.min}
      aria-valuemax={scale.max}
      aria-valuenow={score}
    >
      <div className="inspect-gauge-track">
        <div className="inspect-gauge-normal-zone" style={{ width: `${thresholdAt}%` }} />
        <div
          className={`inspect-gauge-fill ${isAnomalous ? 'inspect-gauge-fill-anomalous' : 'inspect-gauge-fill-normal'}`}
          style={{ width: `${gaugePercent(score, scale)}%` }}
        />
        <div className="inspect-gauge-marker" style={{ left: `${thresholdAt}%` }} />
      </div>
      <div className="inspect-gauge-axis">
        {/* Shifted by its own position so that it never leaves the gauge at either end. */}
        <span
          className="inspect-gauge-marker-label"
          style={{ left: `${thresholdAt}%`, transform: `translateX(-${thresholdAt}%)` }}
        >
          threshold {formatScore(threshold)}
        </span>
      </div>
    </div>
  );
}
