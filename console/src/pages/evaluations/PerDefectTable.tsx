import { metric } from '../../ui/format';
import type { ReportedEvaluation } from './EvaluationReport';

type DefectRow = ReportedEvaluation['perDefect'][number];

/** Each defect type's images against every good TEST image. */
export function PerDefectTable({ rows }: { rows: readonly DefectRow[] }) {
  if (rows.length === 0) return <p className="muted">No defective images, so no per-defect metrics.</p>;
  return (
    <table className="card evaluations-per-defect" data-testid="per-defect-table">
      <thead>
        <tr>
          <th>Defect type</th>
          <th className="number">Images</th>
          <th className="number">Image AUROC</th>
          <th className="number">Pixel AUROC</th>
          <th className="number">AUPRO</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={row.defectType} data-testid="per-defect-row">
            <td>{row.defectType}</td>
            <td className="number">{row.imageCount}</td>
            <td className="number">{metric(row.imageAuroc)}</td>
            <td className="number">{metric(row.pixelAuroc)}</td>
            <td className="number">{metric(row.aupro)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
