/**
 * The bucket layout. Object keys are built only here, from ids the service generated
 * and hex content hashes, never from user-supplied strings, so no input can choose
 * where an object lands.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function assertUuid(value: string, what = 'id'): string {
  if (!UUID.test(value))
    throw new Error(`${what} "${value}" is not a lowercase UUID; refusing to build an object key from it`);
  return value;
}

export function assertSha256(value: string): string {
  if (!SHA256_HEX.test(value))
    throw new Error(`"${value}" is not a lowercase hex SHA-256; refusing to build an object key from it`);
  return value;
}

export const objectKeys = {
  /** Prefix swept for orphans: everything uploaded but not (yet) confirmed lives below it. */
  uploadPrefix: 'uploads/',
  upload: (uploadId: string, part: 'file' | 'mask' = 'file'): string =>
    `uploads/${assertUuid(uploadId, 'upload id')}/${part}`,
  /** Stored images and ground-truth masks, one object each, keyed by the image id. */
  imagePrefix: 'images/',
  maskPrefix: 'masks/',
  image: (imageId: string): string => `images/${assertUuid(imageId, 'image id')}`,
  mask: (imageId: string): string => `masks/${assertUuid(imageId, 'image id')}`,
  /** Model files: pending uploads (swept when expired), then one object per registered version. */
  modelUploadPrefix: 'model-uploads/',
  modelUpload: (uploadId: string): string => `model-uploads/${assertUuid(uploadId, 'model upload id')}`,
  modelPrefix: 'models/',
  model: (modelId: string): string => `models/${assertUuid(modelId, 'model id')}/model.onnx`,
  /** Images sent for inspection outside any dataset: pending uploads, then the inspected input. */
  inspectionUploadPrefix: 'inspection-uploads/',
  inspectionUpload: (uploadId: string): string => `inspection-uploads/${assertUuid(uploadId, 'inspection upload id')}`,
  /** Everything an inspection produced (and its input when it came from an upload), keyed by its id. */
  inspectionPrefix: 'inspections/',
  inspectionInput: (inspectionId: string): string => `inspections/${assertUuid(inspectionId, 'inspection id')}/input`,
  inspectionArtifact: (inspectionId: string, artifact: 'heatmap' | 'overlay' | 'mask'): string =>
    `inspections/${assertUuid(inspectionId, 'inspection id')}/${artifact}.png`,
  inspectionAnomalyMap: (inspectionId: string): string =>
    `inspections/${assertUuid(inspectionId, 'inspection id')}/anomaly-map.bin`,
  /** Per-image anomaly maps of an evaluation (src/services/anomaly-map-object.ts), keyed by the image id. */
  evaluationsPrefix: 'evaluations/',
  evaluationPrefix: (evaluationId: string): string => `evaluations/${assertUuid(evaluationId, 'evaluation id')}/`,
  evaluationMap: (evaluationId: string, imageId: string): string =>
    `evaluations/${assertUuid(evaluationId, 'evaluation id')}/maps/${assertUuid(imageId, 'image id')}.bin`,
  /** An evaluated image's heatmap or overlay PNG, drawn on its first request (InspectionImages). */
  evaluationImageArtifact: (evaluationId: string, imageId: string, artifact: 'heatmap' | 'overlay'): string =>
    `evaluations/${assertUuid(evaluationId, 'evaluation id')}/images/${assertUuid(imageId, 'image id')}/${artifact}.png`,
};
