/**
 * Anomaly-detection metrics of the MVTec AD protocol, on typed arrays, without I/O:
 * image/pixel AUROC, AUPRO, F1-max, their curves, and connected-component labelling.
 */
export { imageAuroc, pixelAuroc, pixelRocCurve, rocCurve, RocAccumulator, type RocCurve } from './roc';
export { aupro, proCurve, ProAccumulator, DEFAULT_PRO_LIMIT, type ProCurve } from './pro';
export { imageF1Max, pixelF1Max, F1Accumulator, type F1Max } from './f1';
export { evaluatePixelMetrics, type PixelMetrics, type PixelMetricsOptions } from './pixel-metrics';
export { IMAGE_SCORE_RULE, imageLabelsFromMasks, imageScoresFromMaps } from './image-scores';
export { downsampleCurve, trapezoidUpTo, LimitedTrapezoid, type CurvePoint } from './curves';
export {
  labelConnectedComponents,
  componentStats,
  ComponentLabeler,
  type Connectivity,
  type ConnectedComponents,
  type ComponentStats,
  type BoundingBox,
} from './connected-components';
export {
  scanPixelScoreGroups,
  groupItemScores,
  DEFAULT_MAX_BUFFERED_PIXELS,
  type ScoreGroupBatch,
  type ScoreGroupSink,
  type PixelScanOptions,
} from './score-groups';
export {
  maskPositivePixels,
  regionPositivePixels,
  type PositivePixels,
  type RegionPositivePixels,
} from './positive-pixels';
export { argsortDescending } from './sort';
