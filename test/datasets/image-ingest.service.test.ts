// Adding one image to a category (what uploads, imports and the demo seed share): every outcome,
// and what each leaves in the database and the bucket.
import { randomUUID } from 'node:crypto';
import { Role, type Principal } from '../../src/auth/principal';
import { ImageSplit } from '../../src/db/entities/image.entity';
import { sha256Hex, type IngestRequest } from '../../src/services/image-ingest.service';
import { objectKeys } from '../../src/storage/object-keys';
import { uniqueName } from '../support/resources';
import { createDatasetServices, type DatasetServices } from '../support/services';
import { pngImage, pngMask } from './helpers';

const principal: Principal = { apiKeyId: randomUUID(), name: 'ingest tests', role: Role.LABELER };

let services: DatasetServices;

beforeAll(async () => {
  services = await createDatasetServices();
});

afterAll(async () => {
  await services?.close();
});

async function createCategory(): Promise<string> {
  const dataset = await services.datasets.create(uniqueName('dataset '), null, principal);
  return (await services.categories.create(dataset.id, 'bottle', principal)).id;
}

async function storedKeys(): Promise<string[]> {
  const keys: string[] = [];
  for (const prefix of ['images/', 'masks/'])
    for await (const object of services.objectStore.list(prefix)) keys.push(object.key);
  return keys.sort();
}

async function request(
  categoryId: string,
  seed: number,
  overrides: Partial<IngestRequest> = {},
): Promise<IngestRequest> {
  const bytes = await pngImage(seed);
  return {
    categoryId,
    split: ImageSplit.TRAIN,
    defectType: null,
    bytes,
    sha256: sha256Hex(bytes),
    readMask: null,
    originalFilename: `${seed}.png`,
    uploadedBy: principal.apiKeyId,
    importJobId: null,
    ...overrides,
  };
}

test('stores the image and its mask under the new image id, then its row', async () => {
  const categoryId = await createCategory();
  const mask = await pngMask();
  const defective = { split: ImageSplit.TEST, defectType: 'crack', readMask: async () => mask };
  const outcome = await services.ingest.ingest(await request(categoryId, 1, defective));
  if (outcome.kind !== 'inserted') throw new Error(`not inserted: ${outcome.kind}`);
  const { image } = outcome;
  expect(image).toMatchObject({
    categoryId,
    split: ImageSplit.TEST,
    defectType: 'crack',
    width: 32,
    height: 32,
    format: 'png',
  });
  expect(image.originalFilename).toBe('1.png');
  expect(image.objectKey).toBe(objectKeys.image(image.id));
  expect(image.maskObjectKey).toBe(objectKeys.mask(image.id));
  expect(await services.objectStore.get(image.objectKey)).toEqual(await pngImage(1));
  expect(await services.objectStore.get(objectKeys.mask(image.id))).toEqual(mask);
  expect(await services.images.findById(image.id)).toEqual(image);
});

test('bytes the category already holds are a duplicate found up front: nothing is read or stored', async () => {
  const categoryId = await createCategory();
  const first = await services.ingest.ingest(await request(categoryId, 2));
  const keys = await storedKeys();
  const readMask = jest.fn(async () => pngMask());
  const again = await services.ingest.ingest(await request(categoryId, 2, { readMask }));
  expect(again).toEqual({
    kind: 'duplicate',
    existing: first.kind === 'inserted' ? first.image : null,
    foundAtInsert: false,
  });
  expect(readMask).not.toHaveBeenCalled();
  expect(await storedKeys()).toEqual(keys);
});

test('an undecodable image, an unreadable mask and a mask of the wrong size are refused, nothing stored', async () => {
  const categoryId = await createCategory();
  const keys = await storedKeys();
  const garbage = Buffer.from('not an image');
  const readMask = jest.fn(async () => pngMask());
  const undecodable = await request(categoryId, 3, { bytes: garbage, sha256: sha256Hex(garbage), readMask });
  expect(await services.ingest.ingest(undecodable)).toMatchObject({
    kind: 'invalid',
    part: 'image',
    code: 'INVALID_IMAGE',
  });
  expect(readMask).not.toHaveBeenCalled();
  const gone = { code: 'SOURCE_NOT_FOUND', message: 'the file is gone' };
  const unreadableMask = await request(categoryId, 4, { readMask: async () => gone });
  expect(await services.ingest.ingest(unreadableMask)).toEqual({ kind: 'invalid', part: 'mask', ...gone });
  const smallMask = await pngMask(8, 8);
  const mismatchedMask = await request(categoryId, 5, { readMask: async () => smallMask });
  expect(await services.ingest.ingest(mismatchedMask)).toMatchObject({
    kind: 'invalid',
    part: 'mask',
    code: 'MASK_MISMATCH',
  });
  expect(await storedKeys()).toEqual(keys);
});

test('a category deleted meanwhile: the objects stored for it are removed again', async () => {
  const categoryId = await createCategory();
  const keys = await storedKeys();
  const outcome = await services.ingest.ingest(
    await request(categoryId, 6, {
      store: async (_part, key, bytes, contentType) => {
        await services.objectStore.put(key, bytes, contentType);
        await services.categories.delete(categoryId);
      },
    }),
  );
  expect(outcome).toEqual({ kind: 'category-gone' });
  expect(await storedKeys()).toEqual(keys);
});

test('the same bytes stored by someone else between lookup and insert: a duplicate; what beforeInsert did is rolled back', async () => {
  const categoryId = await createCategory();
  const uploadId = randomUUID();
  await services.db.imageUploads.insert([
    {
      id: uploadId,
      categoryId,
      split: ImageSplit.TRAIN,
      defectType: null,
      filename: 'race.png',
      contentType: 'image/png',
      byteSize: 1,
      sha256: 'a'.repeat(64),
      withMask: false,
      maskContentType: null,
      maskByteSize: null,
      requestedBy: principal.apiKeyId,
      expiresAt: new Date(Date.now() + 60_000),
    },
  ]);
  const competitor = await request(categoryId, 7, { originalFilename: 'competitor.png' });
  let stored: string | null = null;
  const outcome = await services.ingest.ingest(
    await request(categoryId, 7, {
      store: async (_part, key, bytes, contentType) => {
        stored = key;
        await services.objectStore.put(key, bytes, contentType);
        await services.ingest.ingest(competitor);
      },
      beforeInsert: async (tx) => {
        expect(await tx.imageUploads.claim([uploadId])).toEqual([uploadId]);
      },
    }),
  );
  expect(outcome).toMatchObject({
    kind: 'duplicate',
    foundAtInsert: true,
    existing: { originalFilename: 'competitor.png' },
  });
  expect(stored).not.toBeNull();
  expect(await storedKeys()).not.toContain(stored);
  expect(await services.db.imageUploads.findById(uploadId)).not.toBeNull();
});

test('an error after the objects were stored removes them and is thrown', async () => {
  const categoryId = await createCategory();
  const keys = await storedKeys();
  const failure = new Error('the database went away');
  await expect(
    services.ingest.ingest(
      await request(categoryId, 8, {
        beforeInsert: () => Promise.reject(failure),
      }),
    ),
  ).rejects.toBe(failure);
  expect(await storedKeys()).toEqual(keys);
  expect(await services.images.findLiveBySha256(categoryId, sha256Hex(await pngImage(8)))).toBeNull();
});
