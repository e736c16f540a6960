import { useState } from 'react';
import { dateTime, metric, milliseconds, score as formatScore } from '../../ui/format';
import { RegionOverlay } from './RegionOverlay';
import { RegionTable } from './RegionTable';
import { ScoreGauge } from './ScoreGauge';
import type { InspectionResultData, Timing } from './useInspectUpload';

/** An inspection's verdict, images with region boxes, region statistics, downloads and timings. */
export function InspectionResult({
  inspection,
  timing,
  fileName,
}: {
  inspection: InspectionResultData;
  timing: Timing;
  fileName: string;
}) {
  const [highlighted, setHighlighted] = useState<number | null>(null);
  return (
    <section className="inspect-result" data-testid="inspect-result" data-inspection-id={inspection.id}>
      <div className="inspect-result-columns">
        <RegionOverlay inspection={inspection} highlighted={highlighted} onHighlight={setHighlighted} />
        <div className="inspect-summary card">
          <Verdict inspection={inspection} fileName={fileName} />
          <Timings latencyMs={inspection.latencyMs} timing={timing} />
          <Downloads inspection={inspection} />
        </div>
      </div>
      <h2>Regions</h2>
      <RegionTable regions={inspection.regions} highlighted={highlighted} onHighlight={setHighlighted} />
    </section>
  );
}

function Verdict({ inspection, fileName }: { inspection: InspectionResultData; fileName: string }) {
  return (
    <>
      <div className="inspect-verdict">
        <span
          className={`badge inspect-decision ${inspection.isAnomalous ? 'anomalous' : 'normal'}`}
          data-testid="inspect-decision"
        >
          {inspection.isAnomalous ? 'ANOMALOUS' : 'NORMAL'}
        </span>
        <span className="muted" title={inspection.id}>
          {fileName} · {dateTime(inspection.createdAt)}
        </span>
      </div>
      <ScoreGauge score={inspection.score} threshold={inspection.threshold} isAnomalous={inspection.isAnomalous} />
      <dl className="inspect-figures">
        <dt>Score</dt>
        <dd data-testid="inspect-score">{formatScore(inspection.score)}</dd>
        <dt>Threshold</dt>
        <dd data-testid="inspect-threshold">{formatScore(inspection.threshold)}</dd>
        <dt title="The score min-max normalised with the model’s held-out normal images, in [0, 1]">Normalised</dt>
        <dd data-testid="inspect-normalized">{metric(inspection.normalizedScore)}</dd>
        <dt>Model</dt>
        <dd>
          {inspection.model.name} v{inspection.model.version}
        </dd>
      </dl>
    </>
  );
}

function Timings({ latencyMs, timing }: { latencyMs: number; timing: Timing }) {
  return (
    <dl className="inspect-figures">
      <dt title="Service time from the request until the result was computed">Service latency</dt>
      <dd data-testid="inspect-latency">{milliseconds(latencyMs)}</dd>
      <dt title="The inspect request as this browser saw it">Round trip</dt>
      <dd data-testid="inspect-round-trip">{milliseconds(timing.inspectRoundTripMs)}</dd>
      <dt title="Hashing, upload and inspection">With upload</dt>
      <dd>{milliseconds(timing.totalMs)}</dd>
    </dl>
  );
}

function Downloads({ inspection }: { inspection: InspectionResultData }) {
  return (
    <ul className="inspect-downloads">
      <li>
        <a href={inspection.anomalyMapUrl} target="_blank" rel="noreferrer" data-testid="inspect-heatmap-link">
          Heatmap (PNG)
        </a>
      </li>
      <li>
        <a href={inspection.maskUrl} target="_blank" rel="noreferrer" data-testid="inspect-mask-link">
          Mask (PNG)
        </a>
      </li>
      <li>
        <a
          href={inspection.anomalyMapDataUrl}
          download={`anomaly-map-${inspection.id}.npy`}
          data-testid="inspect-raw-map-link"
        >
          Raw anomaly map (.npy, float32)
        </a>
      </li>
    </ul>
  );
}
