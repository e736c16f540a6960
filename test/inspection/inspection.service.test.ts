// InspectionService called directly (no server): what an inspect stores, the score against the
// engine's on the same tensor, a BMP upload scored like the same pixels as PNG, and uploads that
// are no image refused and removed.
import sharp from 'sharp';
import type { ImageEntity } from '../../src/db/entities/image.entity';
import type { ModelVersionEntity } from '../../src/db/entities/model-version.entity';
import { AppError } from '../../src/errors';
import { decodeMapObject } from '../../src/formats/anomaly-map-object';
import { preprocessImage } from '../../src/inference/preprocess';
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

function isPng(bytes: Buffer): boolean {
  return bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
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
  test('a dataset image: its row and three PNGs are stored, its map follows; its score is the engine’s on the same tensor', async () => {
    const image = images[0] as ImageEntity;
    const inspection = await services.inspection.inspections.inspect(
      { categoryId, imageId: image.id },
      services.principal,
    );

    const row = await services.db.inspections.findById(inspection.id);
    expect(row).toMatchObject({ modelId: model.id, categoryId, imageId: image.id, inputObjectKey: null });
    expect(row).toMatchObject({ width: image.width, height: image.height });
    for (const key of [inspection.heatmapObjectKey, inspection.overlayObjectKey, inspection.maskObjectKey]) {
      expect(key.startsWith(`inspections/${inspection.id}/`)).toBe(true);
      expect(isPng(await services.objectStore.get(key))).toBe(true);
    }

    const { engine, runner } = services.inspection;
    const loaded = await runner.load(model);
    // The service's defaults: INFERENCE_RESIZE sharp-linear, IMAGE_MAX_PIXELS 50 000 000.
    const { tensor } = await preprocessImage(imageBytes[0] as Buffer, {
      inputSize: loaded.inputSize,
      mean: loaded.metadata.mean,
      std: loaded.metadata.std,
      resize: 'sharp-linear',
      maxPixels: 50_000_000,
    });
    const expected = await engine.infer(loaded.key, tensor);
    expectSameScore(inspection.score, expected.score);

    await services.inspection.inspections.drainAnomalyMapWrites();
    const withMap = await services.db.inspections.findById(inspection.id);
    expect(withMap?.mapObjectKey).toBe(objectKeys.inspectionAnomalyMap(inspection.id));
    const stored = decodeMapObject(await services.objectStore.get(withMap?.mapObjectKey as string));
    const [height, width] = loaded.inputSize;
    expect([stored.width, stored.height]).toEqual([width, height]);
    expect(maxAbsDiff(stored.map, expected.anomalyMap)).toBeLessThanOrEqual(
      1e-5 * Math.max(1, Math.abs(expected.score)),
    );
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
    await services.inspection.inspections.drainAnomalyMapWrites();
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
    await services.inspection.inspections.drainAnomalyMapWrites();
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
