/**
 * Inference engine for contract models (docs/model-contract.md): worker-thread onnxruntime
 * sessions with dynamic micro-batching, sharp pre-processing and pure post-processing.
 */
export {
  InferenceEngine,
  DEFAULT_ENGINE_OPTIONS,
  type EngineOptions,
  type EngineStats,
  type InferOptions,
  type InferenceResult,
  type InferenceTimings,
  type LoadedModel,
  type ModelInput,
  type ModelStats,
} from './engine';
export {
  InferenceErrorCode,
  QueueFullError,
  InferenceTimeoutError,
  ModelNotLoadedError,
  InvalidModelError,
  InferenceCancelledError,
  EngineClosedError,
  InferenceFailedError,
  type InferenceErrorCodeValue,
} from './errors';
export {
  parseModelMetadata,
  checkSignature,
  describeOnnxFile,
  REQUIRED_METADATA_KEYS,
  CONTRACT_INPUT,
  CONTRACT_ANOMALY_MAP_OUTPUT,
  CONTRACT_SCORE_OUTPUT,
  CONTRACT_OPSET,
  CONTRACT_FORMAT_VERSION,
  type ModelMetadata,
  type ScoreStats,
  type MapStats,
  type RgbTriple,
  type SessionSignature,
  type ValueSignature,
  type OnnxFileDescription,
} from './model-contract';
export { readOnnxModelHeader, OnnxParseError, type OnnxModelHeader, type OpsetImport } from './onnx-proto';
export {
  preprocessImage,
  decodeRgb,
  resizeRgbSharpLinear,
  resizeRgbPilBilinear,
  normalizeToChw,
  RESIZE_METHODS,
  type ResizeMethod,
  type RgbImage,
  type PreprocessOptions,
  type PreprocessedImage,
} from './preprocess';
export {
  normalizeScore,
  isAnomalousScore,
  resizeMap,
  thresholdMap,
  heatmapScaleFromStats,
  colorizeMap,
  blendRgb,
  renderHeatmapAndOverlayPngs,
  renderMaskPng,
  findRegions,
  inspectionFindings,
  renderInspectionPngs,
  INSPECTION_IMAGE_KINDS,
  isInspectionImageKind,
  type InspectionImageKind,
  type HeatmapScale,
  type AnomalyRegion,
  type InspectionFindingsInput,
  type InspectionFindings,
  type InspectionImagesInput,
  type InspectionPngs,
} from './postprocess';
export { TURBO_LUT } from './colormap';
export {
  EXECUTION_PROVIDERS,
  GRAPH_OPTIMIZATION_LEVELS,
  type ExecutionProvider,
  type GraphOptimizationLevel,
} from './worker-protocol';
