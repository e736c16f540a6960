import { score as formatScore } from '../../ui/format';
import type { InspectionResultData } from './useInspectUpload';

type Region = InspectionResultData['regions'][number];

/** The regions of the predicted mask with their statistics; hovering a row highlights its box. */
export function RegionTable({
  regions,
  highlighted,
  onHighlight,
}: {
  regions: readonly Region[];
  highlighted: number | null;
  onHighlight(index: number | null): void;
}) {
  if (regions.length === 0)
    return <p className="muted">No region: no pixel of the anomaly map reaches the threshold.</p>;
  return (
    <table className="inspect-regions">
      <thead>
        <tr>
          <th className="number">#</th>
          <th className="number">x</th>
          <th className="number">y</th>
          <th className="number">Width</th>
          <th className="number">Height</th>
          <th className="number">Area (px)</th>
          <th className="number">Mean score</th>
          <th className="number">Max score</th>
        </tr>
      </thead>
      <tbody>
        {regions.map((region, index) => (
          <tr
            key={index}
            data-testid="inspect-region-row"
            className={highlighted === index ? 'inspect-region-highlighted' : undefined}
            onMouseEnter={() => onHighlight(index)}
            onMouseLeave={() => onHighlight(null)}
          >
            <td className="number">{index + 1}</td>
            <td className="number">{region.x}</td>
            <td className="number">{region.y}</td>
            <td className="number">{region.width}</td>
            <td className="number">{region.height}</td>
            <td className="number">{region.area}</td>
            <td className="number">{formatScore(region.meanScore)}</td>
            <td className="number">{formatScore(region.maxScore)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
