// InspectionService and InspectionImages called directly (no server): what an inspect stores
// before it answers, the score against the engine's on the same tensor, the images drawn later
// against today's pipeline on the same map, a BMP upload scored like the same pixels as PNG, and
// uploads that are no image refused and removed.
import sharp from 'sharp';
import type { ImageEntity } from '../../src/db/entities/image.entity';
import type { ModelVersionEntity } from '../../src/db/entities/model-version.entity';
import { AppError } from '../../src/errors';
import { decodeMapObject } from '../../src/formats/anomaly-map-object';
import {
  findRegions,
  heatmapScaleFromStats,
  renderHeatmapAndOverlayPngs,
  renderMaskPng,
  resizeMap,
  thresholdMap,
} from '../../src/inference/postprocess';
import { decodeRgb, preprocessImage } from '../../src/inference/preprocess';
import { objectKeys } from '../../src/storage/object-keys';
import { maxAbsDiff, outcomeCode } from '../inference/helpers';
import {
  addImages,
  createCategory,
  createModelServices,
  registerDemoModel,
  type ModelServices,
} from '../support/model-services';
import { generateSamples, put, readDemoModel } from './helpers';
import { bmpOf } from '../support/bmp';

/** Scores of the same tensor agree to float32 precision. */
function expectSameScore(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected)));
}

/** Decoded pixels and their layout: PNG bytes may differ between encoders, the pixels must not. */
async function pixelsOf(png: Buffer): Promise<{ width: number; height: number; channels: number; data: Buffer }> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}

let services: ModelServices;
let categoryId: string;
let model: ModelVersionEntity;
let images: ImageEntity[];
let imageBytes: Buffer[];

beforeAll(async () => {
  services = await createModelServices();
  categoryId = await createCategory(services, 'inspection-service');
  const samples = await generateSamples(await readDemoModel(), { trainCount: 0, testGoodCount: 1, testDefectCount: 1 });
  const files = samples.files.slice(0, 2);
  imageBytes = files.map((file) => file.bytes);
  images = await addImages(services, categoryId, files);
  model = await registerDemoModel(services, categoryId);
});

afterAll(async () => {
  await services?.close();
});

async function inspectionCount(): Promise<number> {
  const [{ count }] = await services.dataSource.query<Array<{ count: string }>>('SELECT count(*) FROM inspection');
  return Number(count);
}

async function storedKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of services.objectStore.list(prefix)) keys.push(object.key);
  return keys.sort();
}

/** An inspection upload with these bytes PUT to its presigned URL. */
async function upload(bytes: Buffer, contentType: string): Promise<string> {
  const target = await services.inspection.inspections.requestUpload(
    { contentType, byteSize: bytes.length },
    services.principal,
  );
  await put(target.url, target.headers, bytes);
  return target.uploadId;
}

describe('InspectionService.inspect', () => {
  test('a dataset image: its row is stored with its exact map before the answer, the map moves to S3 after, no PNG yet; its score is the engine’s on the same tensor', async () => {
    const image = images[0] as ImageEntity;
    const inspection = await services.inspection.inspections.inspect(
      { categoryId, imageId: image.id },
      services.principal,
    );

    const row = await services.db.inspections.findById(inspection.id);
    expect(row).toMatchObject({ modelId: model.id, categoryId, imageId: image.id, inputObjectKey: null });
    expect(row).toMatchObject({ width: image.width, height: image.height });
    const inRow = await services.db.inspections.pendingMap(inspection.id);
    await services.inspection.inspections.drainMapMoves();
    const moved = await services.db.inspections.findById(inspection.id);
    expect(moved?.mapObjectKey).toBe(objectKeys.inspectionAnomalyMap(inspection.id));
    expect(await services.db.inspections.pendingMap(inspection.id)).toBeNull();
    expect(await storedKeys(`inspections/${inspection.id}/`)).toEqual([objectKeys.inspectionAnomalyMap(inspection.id)]);
    // Written at once with the row (unless the move was quicker than this test), the same bytes.
    if (inRow)
      expect(inRow.equals(await services.objectStore.get(objectKeys.inspectionAnomalyMap(inspection.id)))).toBe(true);

    const { engine, runner } = services.inspection;
    const loaded = await runner.load(model);
    // The service's defaults: INFERENCE_RESIZE pil-bilinear, IMAGE_MAX_PIXELS 50 000 000.
    const { tensor } = await preprocessImage(imageBytes[0] as Buffer, {
      inputSize: loaded.inputSize,
      mean: loaded.metadata.mean,
      std: loaded.metadata.std,
      resize: 'pil-bilinear',
      maxPixels: 50_000_000,
    });
    const expected = await engine.infer(loaded.key, tensor);
    expectSameScore(inspection.score, expected.score);
    const stored = decodeMapObject(await services.objectStore.get(moved?.mapObjectKey as string));
    const [height, width] = loaded.inputSize;
    expect([stored.width, stored.height]).toEqual([width, height]);
    expect(maxAbsDiff(stored.map, expected.anomalyMap)).toBeLessThanOrEqual(
      1e-5 * Math.max(1, Math.abs(expected.score)),
    );
  });

  test('its images, drawn on first request from the stored map, are today’s pipeline’s on that map, pixel for pixel, and are stored once drawn', async () => {
    const image = images[1] as ImageEntity;
    const { inspections, inspectionImages } = services.inspection;
    const mapOf = async (inspectionId: string) => {
      await inspections.drainMapMoves();
      return decodeMapObject(await services.objectStore.get(objectKeys.inspectionAnomalyMap(inspectionId)));
    };
    // A threshold that some pixels pass and most do not: the 95th percentile of a first run's map.
    const first = await mapOf((await inspections.inspect({ categoryId, imageId: image.id }, services.principal)).id);
    const threshold = Array.from(first.map).sort((a, b) => a - b)[Math.floor(first.map.length * 0.95)] as number;
    const inspection = await inspections.inspect({ categoryId, imageId: image.id, threshold }, services.principal);
    const { map, width: mapWidth, height: mapHeight } = await mapOf(inspection.id);
    // The map stored is the map the answer was computed from: the same regions.
    const original = await decodeRgb(imageBytes[1] as Buffer, 50_000_000);
    const resized = resizeMap(map, mapWidth, mapHeight, original.width, original.height);
    expect(inspection.regions.length).toBeGreaterThan(0);
    expect(inspection.regions).toEqual(findRegions(resized, threshold, original.width, original.height));

    // What inspect drew and stored before the answer until now (postprocess.ts, unchanged).
    const loaded = await services.inspection.runner.load(model);
    const todays = {
      ...renderHeatmapAndOverlayPngs(original, resized, heatmapScaleFromStats(loaded.metadata.mapStats)),
      mask: renderMaskPng(thresholdMap(resized, threshold), original.width, original.height),
    };
    for (const kind of ['overlay', 'heatmap', 'mask'] as const) {
      const served = await inspectionImages.png(inspection.id, kind);
      expect(await pixelsOf(served)).toEqual(await pixelsOf(await todays[kind]));
    }
    // Drawn once: all three are in S3 under the row's keys.
    const keys = [inspection.heatmapObjectKey, inspection.overlayObjectKey, inspection.maskObjectKey];
    for (let attempt = 0; attempt < 100; attempt++) {
      const found = await Promise.all(keys.map((key) => services.objectStore.head(key)));
      if (found.every((info) => info !== null)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const key of keys) expect(await services.objectStore.head(key)).not.toBeNull();
  });

  test('a map whose move to S3 never happened is read from its row, and the sweep moves it later', async () => {
    const { inspections, inspectionImages } = services.inspection;
    const inspection = await inspections.inspect(
      { categoryId, imageId: (images[0] as ImageEntity).id },
      services.principal,
    );
    await inspections.drainMapMoves();
    const key = objectKeys.inspectionAnomalyMap(inspection.id);
    const object = await services.objectStore.get(key);
    // As if the process had died right after the answer: the map only in the row.
    await services.dataSource.query('UPDATE inspection SET pending_map = $2, map_object_key = NULL WHERE id = $1', [
      inspection.id,
      object,
    ]);
    await services.objectStore.delete([key]);

    const mask = await inspectionImages.png(inspection.id, 'mask');
    expect((await pixelsOf(mask)).width).toBe(inspection.width);
    expect(await inspections.sweepPendingMaps(new Date())).toBe(0); // not waiting long enough yet
    expect(await inspections.sweepPendingMaps(new Date(Date.now() + 60_000))).toBeGreaterThanOrEqual(1);
    expect((await services.db.inspections.findById(inspection.id))?.mapObjectKey).toBe(key);
    expect(await services.db.inspections.pendingMap(inspection.id)).toBeNull();
    expect((await services.objectStore.get(key)).equals(object)).toBe(true);
  });

  test('a BMP upload is scored like the same pixels stored as PNG; the upload is consumed', async () => {
    const image = images[1] as ImageEntity;
    const rgb = sharp(imageBytes[1] as Buffer)
      .toColourspace('srgb')
      .removeAlpha()
      .raw();
    const { data, info } = await rgb.toBuffer({ resolveWithObject: true });
    const uploadId = await upload(bmpOf(data, info.width, info.height), 'image/bmp');
    const [fromPng, fromBmp] = [
      await services.inspection.inspections.inspect({ categoryId, imageId: image.id }, services.principal),
      await services.inspection.inspections.inspect({ modelId: model.id, uploadId }, services.principal),
    ];
    expectSameScore(fromBmp.score, fromPng.score);
    expect(fromBmp.inputObjectKey).toBe(objectKeys.inspectionInput(fromBmp.id));
    expect(await services.db.inspectionUploads.findById(uploadId)).toBeNull();
    expect(await services.objectStore.head(objectKeys.inspectionUpload(uploadId))).toBeNull();
  });

  test.each([
    ['bytes that are no image', Buffer.from('this is not a PNG at all')],
    ['a truncated PNG', () => (imageBytes[0] as Buffer).subarray(0, 200)],
  ])('%s: INVALID_IMAGE, the upload row and object are removed, nothing is stored', async (_name, bytesOf) => {
    const bytes = typeof bytesOf === 'function' ? bytesOf() : bytesOf;
    await services.inspection.inspections.drainMapMoves();
    const [rowsBefore, objectsBefore] = [await inspectionCount(), await storedKeys('inspections/')];
    const uploadId = await upload(bytes, 'image/png');
    const inspections = services.inspection.inspections;
    const refusal = await inspections
      .inspect({ categoryId, uploadId }, services.principal)
      .catch((error: unknown) => error);
    // An AppError, so that GraphQL answers with its code rather than an internal error.
    expect(refusal).toBeInstanceOf(AppError);
    expect((refusal as AppError).code).toBe('INVALID_IMAGE');
    expect(await services.db.inspectionUploads.findById(uploadId)).toBeNull();
    expect(await services.objectStore.head(objectKeys.inspectionUpload(uploadId))).toBeNull();
    await services.inspection.inspections.drainMapMoves();
    expect(await inspectionCount()).toBe(rowsBefore);
    expect(await storedKeys('inspections/')).toEqual(objectsBefore);
  });

  test('an upload not PUT yet: UPLOAD_INCOMPLETE, and it stays usable', async () => {
    const { inspections } = services.inspection;
    const bytes = imageBytes[0] as Buffer;
    const target = await inspections.requestUpload(
      { contentType: 'image/png', byteSize: bytes.length },
      services.principal,
    );
    expect(await outcomeCode(inspections.inspect({ categoryId, uploadId: target.uploadId }, services.principal))).toBe(
      'UPLOAD_INCOMPLETE',
    );
    await put(target.url, target.headers, bytes);
    const fromUpload = await inspections.inspect({ categoryId, uploadId: target.uploadId }, services.principal);
    const fromDataset = await inspections.inspect(
      { categoryId, imageId: (images[0] as ImageEntity).id },
      services.principal,
    );
    expectSameScore(fromUpload.score, fromDataset.score);
  });
});
