import type { EvaluationReportQuery } from '../../gql/graphql';
import { metric, score } from '../../ui/format';
import { ApplyThreshold } from './ApplyThreshold';
import { CurveChart } from './CurveChart';
import { MisclassifiedImages } from './MisclassifiedImages';
import { PerDefectTable } from './PerDefectTable';

export type ReportedEvaluation = NonNullable<EvaluationReportQuery['evaluation']>;

/** The metrics, curves and worst mistakes of a SUCCEEDED evaluation. */
export function EvaluationReport({ evaluation }: { evaluation: ReportedEvaluation }) {
  return (
    <div className="evaluations-report" data-testid="evaluation-report">
      <div className="card">
        <dl className="evaluations-metrics">
          <Metric label="Image AUROC" value={metric(evaluation.imageAuroc)} testId="metric-image-auroc" />
          <Metric label="Pixel AUROC" value={metric(evaluation.pixelAuroc)} testId="metric-pixel-auroc" />
          <Metric
            label={`AUPRO (FPR ≤ ${evaluation.auproLimit})`}
            value={metric(evaluation.aupro)}
            testId="metric-aupro"
          />
          <Metric label="Image F1-max" value={metric(evaluation.imageF1Max)} testId="metric-image-f1-max" />
          <Metric
            label="F1-max threshold"
            value={score(evaluation.imageF1Threshold)}
            testId="metric-image-f1-threshold"
          />
          <Metric label="Good images" value={String(evaluation.goodImageCount ?? '—')} testId="metric-good-count" />
          <Metric
            label="Defective images"
            value={String(evaluation.defectiveImageCount ?? '—')}
            testId="metric-defective-count"
          />
        </dl>
        <p className="muted evaluations-protocol">
          Image score: {evaluation.imageScoreRule} of the anomaly map. Pixel metrics at {evaluation.mapWidth ?? '?'}×
          {evaluation.mapHeight ?? '?'} (the model’s input size).
        </p>
        <ApplyThreshold evaluation={evaluation} />
      </div>

      <h2>Per defect type</h2>
      <PerDefectTable rows={evaluation.perDefect} />

      <h2>Curves</h2>
      <div className="evaluations-curves">
        <CurveChart
          title="Image-level ROC"
          points={evaluation.rocCurve}
          xLabel="False positive rate"
          yLabel="True positive rate"
          xMax={1}
          diagonal
          testId="roc-curve"
        />
        <CurveChart
          title={`Pixel-level PRO (FPR up to ${evaluation.auproLimit})`}
          points={evaluation.proCurve}
          xLabel="False positive rate"
          yLabel="PRO"
          xMax={evaluation.auproLimit}
          testId="pro-curve"
        />
      </div>

      <MisclassifiedImages evaluationId={evaluation.id} hasThreshold={evaluation.imageF1Threshold !== null} />
    </div>
  );
}

function Metric({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <div className="evaluations-metric">
      <dt>{label}</dt>
      <dd data-testid={testId}>{value}</dd>
    </div>
  );
}
