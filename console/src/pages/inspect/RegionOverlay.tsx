import { useState } from 'react';
import { regionBoxPercent } from './region-box';
import type { InspectionResultData } from './useInspectUpload';

type View = 'overlay' | 'heatmap' | 'mask' | 'input';

const VIEW_LABELS: Record<View, string> = { overlay: 'Overlay', heatmap: 'Heatmap', mask: 'Mask', input: 'Input' };

function viewUrl(inspection: InspectionResultData, view: View): string | null | undefined {
  switch (view) {
    case 'overlay':
      return inspection.overlayUrl;
    case 'heatmap':
      return inspection.anomalyMapUrl;
    case 'mask':
      return inspection.maskUrl;
    case 'input':
      return inspection.inputUrl;
  }
}

/** One of the inspection's images with its regions drawn as boxes over it, at whatever size it is shown. */
export function RegionOverlay({
  inspection,
  highlighted,
  onHighlight,
}: {
  inspection: InspectionResultData;
  highlighted: number | null;
  onHighlight(index: number | null): void;
}) {
  const [view, setView] = useState<View>('overlay');
  const [showBoxes, setShowBoxes] = useState(true);
  const views = (Object.keys(VIEW_LABELS) as View[]).filter((candidate) => viewUrl(inspection, candidate));
  const src = viewUrl(inspection, view) ?? inspection.overlayUrl;

  return (
    <figure className="inspect-figure">
      <div className="inspect-figure-controls">
        <div className="inspect-views" role="group" aria-label="Image shown">
          {views.map((candidate) => (
            <button
              key={candidate}
              type="button"
              aria-pressed={candidate === view}
              className={candidate === view ? 'inspect-view-active' : undefined}
              onClick={() => setView(candidate)}
            >
              {VIEW_LABELS[candidate]}
            </button>
          ))}
        </div>
        <label className="inspect-toggle">
          <input type="checkbox" checked={showBoxes} onChange={(event) => setShowBoxes(event.target.checked)} />
          Region boxes
        </label>
      </div>
      <div className="inspect-frame" style={{ aspectRatio: `${inspection.width} / ${inspection.height}` }}>
        <LoadingImage key={src} src={src} alt={`${VIEW_LABELS[view]} of the inspected image`} view={view} />
        {showBoxes &&
          inspection.regions.map((region, index) => (
            <div
              key={index}
              className={`inspect-box${highlighted === index ? ' inspect-box-highlighted' : ''}`}
              data-testid="inspect-region-box"
              style={regionBoxPercent(region, inspection)}
              onMouseEnter={() => onHighlight(index)}
              onMouseLeave={() => onHighlight(null)}
            >
              <span className="inspect-box-label">{index + 1}</span>
            </div>
          ))}
      </div>
      <figcaption className="muted">
        {inspection.width} × {inspection.height} px · {inspection.regions.length}{' '}
        {inspection.regions.length === 1 ? 'region' : 'regions'}
      </figcaption>
    </figure>
  );
}

/** The service draws result PNGs on their first request, which can take a moment. */
function LoadingImage({ src, alt, view }: { src: string; alt: string; view: View }) {
  const [status, setStatus] = useState<'loading' | 'loaded' | 'failed'>('loading');
  return (
    <>
      <img
        src={src}
        alt={alt}
        data-testid="inspect-image"
        data-view={view}
        onLoad={() => setStatus('loaded')}
        onError={() => setStatus('failed')}
      />
      {status === 'loading' && <p className="inspect-frame-note muted">Drawing the image…</p>}
      {status === 'failed' && (
        <p className="inspect-frame-note error" role="alert">
          The image did not load. <a href={src}>Open it</a> to see the service’s answer.
        </p>
      )}
    </>
  );
}
