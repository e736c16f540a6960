// A labeler's day over HTTP: datasets and categories, presigned uploads, listing, and every
// refusal leaving neither a row nor an object behind.
import sharp from 'sharp';
import type { GraphQLTestClient } from '../support/graphql-client';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  CONFIRM_UPLOADS,
  CREATE_CATEGORY,
  CREATE_DATASET,
  createCategory,
  createClients,
  pngImage,
  pngMask,
  put,
  REQUEST_UPLOADS,
  requestUploads,
  sha256,
  StorageProbe,
  uploadAndConfirm,
  type Clients,
  type ConfirmResult,
  type FileToUpload,
} from './helpers';
import { bmpOf } from '../support/bmp';

const UPLOAD_MAX_BYTES = 200_000;
const IMAGE_MAX_PIXELS = 100_000;

let server: TestServer;
let clients: Clients;
let probe: StorageProbe;

beforeAll(async () => {
  server = await startTestServer({
    env: { UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES), IMAGE_MAX_PIXELS: String(IMAGE_MAX_PIXELS) },
  });
  clients = await createClients(server);
  probe = new StorageProbe(server);
});

afterAll(async () => {
  await probe?.close();
  await server?.stop();
});

async function download(url: string): Promise<Buffer> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

describe('datasets and categories', () => {
  test('a labeler creates a dataset and categories; names are unique and plain', async () => {
    const { datasetId } = await createCategory(clients.labeler, 'MVTec copy', 'hazelnut');
    expect(await clients.labeler.errorCode(CREATE_DATASET, { input: { name: 'MVTec copy' } })).toBe('CONFLICT');
    expect(await clients.labeler.errorCode(CREATE_CATEGORY, { input: { datasetId, name: 'hazelnut' } })).toBe(
      'CONFLICT',
    );
    for (const name of ['../etc', 'a/b', '.hidden', '', 'with space']) {
      expect(await clients.labeler.errorCode(CREATE_CATEGORY, { input: { datasetId, name } })).toBe('BAD_USER_INPUT');
    }
    await clients.labeler.data(CREATE_CATEGORY, { input: { datasetId, name: 'bottle' } });
    const data = await clients.viewer.data<{
      dataset: { name: string; description: string; categories: Array<{ name: string; dataset: { id: string } }> };
    }>('query($id: ID!) { dataset(id: $id) { name description categories { name dataset { id } } } }', {
      id: datasetId,
    });
    expect(data.dataset).toEqual({
      name: 'MVTec copy',
      description: 'test data',
      categories: [
        { name: 'bottle', dataset: { id: datasetId } },
        { name: 'hazelnut', dataset: { id: datasetId } },
      ],
    });
    const listed = await clients.viewer.data<{
      datasets: { totalCount: number; edges: Array<{ node: { id: string } }> };
    }>('{ datasets(first: 10) { totalCount edges { node { id } } } }');
    expect(listed.datasets.edges.map((edge) => edge.node.id)).toContain(datasetId);
  });

  test('a viewer reads but cannot create, upload or import; only an admin deletes', async () => {
    expect(await clients.viewer.errorCode(CREATE_DATASET, { input: { name: 'viewer set' } })).toBe('FORBIDDEN');
    const { datasetId, categoryId } = await createCategory(clients.labeler, 'roles');
    expect(await clients.viewer.errorCode(REQUEST_UPLOADS, { input: { categoryId, split: 'TRAIN', files: [] } })).toBe(
      'FORBIDDEN',
    );
    expect(
      await clients.viewer.errorCode(
        'mutation($input: ImportMvtecDatasetInput!) { importMvtecDataset(input: $input) { id } }',
        { input: { datasetId, source: { s3Prefix: 'x' } } },
      ),
    ).toBe('FORBIDDEN');
    expect(await clients.labeler.errorCode('mutation($id: ID!) { deleteDataset(id: $id) }', { id: datasetId })).toBe(
      'FORBIDDEN',
    );
    expect(await clients.labeler.errorCode('mutation($id: ID!) { deleteCategory(id: $id) }', { id: categoryId })).toBe(
      'FORBIDDEN',
    );
  });
});

describe('uploading samples through presigned URLs', () => {
  test('request, PUT with fetch, confirm; then list with pagination and filters and read the same bytes back', async () => {
    const { categoryId } = await createCategory(clients.labeler, 'uploads');
    const goodTrain = await Promise.all([1, 2, 3].map((seed) => pngImage(seed)));
    const goodTest = await pngImage(4);
    const cracked = await Promise.all([5, 6].map((seed) => pngImage(seed)));
    const mask = await pngMask();

    const train = await uploadAndConfirm(
      clients.labeler,
      categoryId,
      'TRAIN',
      null,
      goodTrain.map((bytes, index) => ({ bytes, filename: `train_${index}.png` })),
    );
    expect(train.refused).toEqual([]);
    expect(train.images).toHaveLength(3);
    expect(train.images[0]).toMatchObject({
      split: 'TRAIN',
      defectType: null,
      good: true,
      width: 32,
      height: 32,
      maskUrl: null,
      originalFilename: 'train_0.png',
    });
    await uploadAndConfirm(clients.labeler, categoryId, 'TEST', null, [{ bytes: goodTest }]);
    const defects = await uploadAndConfirm(
      clients.labeler,
      categoryId,
      'TEST',
      'crack',
      cracked.map((bytes) => ({ bytes, mask })),
    );
    expect(defects.refused).toEqual([]);
    expect(defects.results.map((result) => result.code)).toEqual([null, null]);

    const crackImage = defects.images[0];
    expect(crackImage?.sha256).toBe(sha256(cracked[0] as Buffer));
    expect(await download(crackImage?.url ?? '')).toEqual(cracked[0]);
    expect(await download(crackImage?.maskUrl ?? '')).toEqual(mask);
    expect(await download(train.images[2]?.url ?? '')).toEqual(goodTrain[2]);

    type Page = {
      images: {
        totalCount: number;
        edges: Array<{ node: { id: string; split: string; defectType: string | null } }>;
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
    };
    const query = `query($categoryId: ID!, $after: String, $split: Split, $defectType: String, $good: Boolean) {
      images(categoryId: $categoryId, first: 2, after: $after, split: $split, defectType: $defectType, good: $good) {
        totalCount edges { node { id split defectType } } pageInfo { hasNextPage endCursor }
      }
    }`;
    const collect = async (filters: Record<string, unknown>): Promise<string[]> => {
      const ids: string[] = [];
      let after: string | null = null;
      for (let guard = 0; guard < 20; guard += 1) {
        const page: Page = await clients.viewer.data<Page>(query, { categoryId, after, ...filters });
        ids.push(...page.images.edges.map((edge) => edge.node.id));
        if (!page.images.pageInfo.hasNextPage) break;
        after = page.images.pageInfo.endCursor;
      }
      return ids;
    };
    const all = await collect({});
    expect(all).toHaveLength(6);
    expect(new Set(all).size).toBe(6);
    expect(await collect({ split: 'TRAIN' })).toHaveLength(3);
    expect(await collect({ split: 'TEST' })).toHaveLength(3);
    expect(await collect({ good: true })).toHaveLength(4);
    expect(await collect({ good: false })).toHaveLength(2);
    expect((await collect({ defectType: 'crack' })).sort()).toEqual(defects.images.map((image) => image.id).sort());

    const category = await clients.viewer.data<{
      category: { imageCount: number; train: number; test: number; crack: number; defectTypes: string[] };
    }>(
      'query($id: ID!) { category(id: $id) { imageCount train: imageCount(split: TRAIN) test: imageCount(split: TEST) crack: imageCount(defectType: "crack") defectTypes } }',
      { id: categoryId },
    );
    expect(category.category).toEqual({ imageCount: 6, train: 3, test: 3, crack: 2, defectTypes: ['crack'] });
    expect(await probe.keys('uploads/')).toEqual([]);
    expect(await probe.count('SELECT count(*) FROM image_upload')).toBe(0);
  });

  test('grayscale, JPEG, TIFF and BMP images are accepted', async () => {
    const { categoryId } = await createCategory(clients.labeler, 'formats');
    const gray = await sharp(Buffer.alloc(24 * 24, 90), { raw: { width: 24, height: 24, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    const jpeg = await sharp(await pngImage(11))
      .jpeg()
      .toBuffer();
    const tiff = await sharp(await pngImage(12))
      .tiff()
      .toBuffer();
    const bmp = bmpOf(
      await sharp(await pngImage(13))
        .raw()
        .toBuffer(),
      32,
      32,
    );
    const result = await uploadAndConfirm(clients.labeler, categoryId, 'TRAIN', null, [
      { bytes: gray },
      { bytes: jpeg, contentType: 'image/jpeg' },
      { bytes: tiff, contentType: 'image/tiff' },
      { bytes: bmp, contentType: 'image/bmp' },
    ]);
    expect(result.refused).toEqual([]);
    const formats = await clients.viewer.data<{
      images: { edges: Array<{ node: { format: string; channels: number; sha256: string } }> };
    }>('query($id: ID!) { images(categoryId: $id) { edges { node { format channels sha256 } } } }', { id: categoryId });
    const bySha = new Map(formats.images.edges.map((edge) => [edge.node.sha256, edge.node]));
    expect(bySha.get(sha256(gray))).toEqual({ format: 'png', channels: 1, sha256: sha256(gray) });
    expect(bySha.get(sha256(jpeg))?.format).toBe('jpeg');
    expect(bySha.get(sha256(tiff))?.format).toBe('tiff');
    expect(bySha.get(sha256(bmp))).toMatchObject({ format: 'bmp', channels: 3 });
  });
});

describe('every refusal has its code and leaves nothing behind', () => {
  let categoryId: string;
  let client: GraphQLTestClient;

  beforeAll(async () => {
    client = clients.labeler;
    categoryId = (await createCategory(client, 'refusals')).categoryId;
  });

  /** Runs an upload that must be refused with `code`, and checks that no row and no object remain. */
  async function expectRefused(
    code: string,
    split: 'TRAIN' | 'TEST',
    defectType: string | null,
    file: FileToUpload,
    putBytes?: Buffer,
  ): Promise<void> {
    const keysBefore = await probe.storedKeys();
    const imagesBefore = await probe.count('SELECT count(*) FROM image');
    const [target] = await requestUploads(client, categoryId, split, defectType, [file]);
    if (!target) throw new Error('no upload target');
    await put(target.url, target.headers, putBytes ?? file.bytes);
    if (file.mask && target.maskUrl && target.maskHeaders) await put(target.maskUrl, target.maskHeaders, file.mask);
    const result = (
      await client.data<{ confirmImageUploads: ConfirmResult }>(CONFIRM_UPLOADS, { ids: [target.uploadId] })
    ).confirmImageUploads;
    expect(result.images).toEqual([]);
    expect(result.refused).toEqual([{ uploadId: target.uploadId, code, message: expect.any(String) }]);
    expect(await probe.count('SELECT count(*) FROM image')).toBe(imagesBefore);
    expect(await probe.count('SELECT count(*) FROM image_upload WHERE id = $1', [target.uploadId])).toBe(0);
    expect(await probe.storedKeys()).toEqual(keysBefore);
  }

  test('CHECKSUM_MISMATCH: the bytes are not the declared ones', async () => {
    const bytes = await pngImage(100);
    await expectRefused('CHECKSUM_MISMATCH', 'TRAIN', null, {
      bytes,
      declaredSha256: sha256(Buffer.from('something else')),
    });
    // Other bytes of the declared size: the signature would refuse them on S3; the checksum does here.
    const other = await pngImage(101);
    expect(other.length).toBe(bytes.length);
    await expectRefused('CHECKSUM_MISMATCH', 'TRAIN', null, { bytes }, other);
    // Fewer bytes than declared.
    await expectRefused('CHECKSUM_MISMATCH', 'TRAIN', null, { bytes }, bytes.subarray(0, 100));
  });

  test('INVALID_IMAGE: not an image, a truncated PNG, an SVG', async () => {
    await expectRefused('INVALID_IMAGE', 'TRAIN', null, { bytes: Buffer.from('definitely not a PNG file, just text') });
    const png = await pngImage(102);
    await expectRefused('INVALID_IMAGE', 'TRAIN', null, { bytes: png.subarray(0, png.length - 40) });
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    );
    await expectRefused('INVALID_IMAGE', 'TRAIN', null, { bytes: svg });
  });

  test('IMAGE_TOO_LARGE: more bytes arrive than the limit, whatever was declared', async () => {
    const bytes = await pngImage(99);
    await expectRefused(
      'IMAGE_TOO_LARGE',
      'TRAIN',
      null,
      { bytes },
      Buffer.concat([bytes, Buffer.alloc(UPLOAD_MAX_BYTES)]),
    );
  });

  test('IMAGE_TOO_LARGE: too many pixels (decompression bomb) at confirm', async () => {
    const bomb = await sharp({ create: { width: 400, height: 400, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .png()
      .toBuffer();
    expect(bomb.length).toBeLessThan(UPLOAD_MAX_BYTES);
    await expectRefused('IMAGE_TOO_LARGE', 'TRAIN', null, { bytes: bomb });
  });

  test('MASK_MISMATCH and INVALID_MASK: wrong size, not binary, in colour', async () => {
    const bytes = await pngImage(103);
    await expectRefused('MASK_MISMATCH', 'TEST', 'crack', { bytes, mask: await pngMask(16, 16) });
    await expectRefused('INVALID_MASK', 'TEST', 'crack', { bytes, mask: await pngMask(32, 32, 128) });
    const colour = await sharp(await pngImage(104))
      .png()
      .toBuffer();
    await expectRefused('INVALID_MASK', 'TEST', 'crack', { bytes, mask: colour });
    await expectRefused('INVALID_MASK', 'TEST', 'crack', { bytes, mask: Buffer.from('not a mask') });
  });

  test('a 0/1 mask is accepted like a 0/255 one', async () => {
    const result = await uploadAndConfirm(client, categoryId, 'TEST', 'scratch', [
      { bytes: await pngImage(105), mask: await pngMask(32, 32, 1) },
    ]);
    expect(result.refused).toEqual([]);
  });

  test('DUPLICATE_IMAGE: the same bytes twice in a category', async () => {
    const bytes = await pngImage(106);
    const first = await uploadAndConfirm(client, categoryId, 'TRAIN', null, [{ bytes }]);
    expect(first.images).toHaveLength(1);
    await expectRefused('DUPLICATE_IMAGE', 'TRAIN', null, { bytes });
    expect(await probe.count('SELECT count(*) FROM image WHERE sha256 = $1', [sha256(bytes)])).toBe(1);
  });

  test('UPLOAD_EXPIRED: confirming after the URL expired is refused and cleans up', async () => {
    const keysBefore = await probe.storedKeys();
    const bytes = await pngImage(107);
    const [target] = await requestUploads(client, categoryId, 'TRAIN', null, [{ bytes }]);
    if (!target) throw new Error('no upload target');
    await put(target.url, target.headers, bytes);
    // s3rver does not enforce presigned expiry; the service does, from its own record.
    await probe.query(`UPDATE image_upload SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      target.uploadId,
    ]);
    const result = (
      await client.data<{ confirmImageUploads: ConfirmResult }>(CONFIRM_UPLOADS, { ids: [target.uploadId] })
    ).confirmImageUploads;
    expect(result.refused.map((refusal) => refusal.code)).toEqual(['UPLOAD_EXPIRED']);
    expect(await probe.count('SELECT count(*) FROM image WHERE sha256 = $1', [sha256(bytes)])).toBe(0);
    expect(await probe.count('SELECT count(*) FROM image_upload WHERE id = $1', [target.uploadId])).toBe(0);
    expect(await probe.storedKeys()).toEqual(keysBefore);
  });

  test('UPLOAD_INCOMPLETE: confirming before the PUT keeps the upload pending; after the PUT it succeeds', async () => {
    const bytes = await pngImage(108);
    const [target] = await requestUploads(client, categoryId, 'TRAIN', null, [{ bytes }]);
    if (!target) throw new Error('no upload target');
    const early = (
      await client.data<{ confirmImageUploads: ConfirmResult }>(CONFIRM_UPLOADS, { ids: [target.uploadId] })
    ).confirmImageUploads;
    expect(early.refused.map((refusal) => refusal.code)).toEqual(['UPLOAD_INCOMPLETE']);
    expect(await probe.count('SELECT count(*) FROM image WHERE sha256 = $1', [sha256(bytes)])).toBe(0);
    await put(target.url, target.headers, bytes);
    const later = (
      await client.data<{ confirmImageUploads: ConfirmResult }>(CONFIRM_UPLOADS, { ids: [target.uploadId] })
    ).confirmImageUploads;
    expect(later.images.map((image) => image.sha256)).toEqual([sha256(bytes)]);
    // Confirming twice finds nothing the second time.
    const again = (
      await client.data<{ confirmImageUploads: ConfirmResult }>(CONFIRM_UPLOADS, { ids: [target.uploadId] })
    ).confirmImageUploads;
    expect(again.refused.map((refusal) => refusal.code)).toEqual(['NOT_FOUND']);
  });

  test('refused up front, before anything is stored: too large, unknown type, missing or misplaced mask, another labeler’s upload', async () => {
    const uploadsBefore = await probe.count('SELECT count(*) FROM image_upload');
    const bytes = await pngImage(109);
    const request = (
      file: Record<string, unknown>,
      split = 'TRAIN',
      defectType: string | null = null,
    ): Promise<string | undefined> =>
      client.errorCode(REQUEST_UPLOADS, {
        input: {
          categoryId,
          split,
          defectType,
          files: [
            { filename: 'f.png', contentType: 'image/png', byteSize: bytes.length, sha256: sha256(bytes), ...file },
          ],
        },
      });
    expect(await request({ byteSize: UPLOAD_MAX_BYTES + 1 })).toBe('IMAGE_TOO_LARGE');
    expect(await request({ contentType: 'image/gif' })).toBe('INVALID_IMAGE');
    expect(await request({}, 'TEST', 'crack')).toBe('MASK_MISSING');
    expect(await request({ withMask: true })).toBe('BAD_USER_INPUT');
    expect(await request({}, 'TRAIN', 'crack')).toBe('BAD_USER_INPUT');
    expect(await request({}, 'TEST', 'good')).toBe('BAD_USER_INPUT');
    expect(await request({ sha256: 'abc' })).toBe('BAD_USER_INPUT');
    expect(await probe.count('SELECT count(*) FROM image_upload')).toBe(uploadsBefore);

    const [target] = await requestUploads(client, categoryId, 'TRAIN', null, [{ bytes }]);
    if (!target) throw new Error('no upload target');
    const otherLabeler = (await createClients(server)).labeler;
    const stolen = (
      await otherLabeler.data<{ confirmImageUploads: ConfirmResult }>(CONFIRM_UPLOADS, {
        ids: [target.uploadId, 'not-an-id'],
      })
    ).confirmImageUploads;
    expect(stolen.refused.map((refusal) => refusal.code)).toEqual(['NOT_FOUND', 'NOT_FOUND']);
  });

  test('one refused upload does not stop the others in the same confirm', async () => {
    const good = await pngImage(110);
    const bad = Buffer.from('garbage garbage garbage');
    const result = await uploadAndConfirm(client, categoryId, 'TRAIN', null, [{ bytes: good }, { bytes: bad }]);
    expect(result.images.map((image) => image.sha256)).toEqual([sha256(good)]);
    expect(result.results.map((entry) => entry.code)).toEqual([null, 'INVALID_IMAGE']);
  });
});

describe('snapshots and deletion', () => {
  const SNAPSHOT =
    'mutation($categoryId: ID!, $name: String!) { createSnapshot(categoryId: $categoryId, name: $name) { id name imageCount } }';
  const SNAPSHOT_IMAGES =
    'query($id: ID!) { snapshot(id: $id) { imageCount images(first: 50) { totalCount edges { node { id deletedAt } } } } }';

  test('a snapshot keeps its images readable after they are deleted; deleting the snapshot removes them, rows and objects', async () => {
    const { categoryId } = await createCategory(clients.labeler, 'snapshots');
    const uploaded = await uploadAndConfirm(clients.labeler, categoryId, 'TEST', 'hole', [
      { bytes: await pngImage(200), mask: await pngMask() },
      { bytes: await pngImage(201), mask: await pngMask() },
    ]);
    const [kept, other] = uploaded.images;
    if (!kept || !other) throw new Error('expected two images');
    const snapshot = (
      await clients.labeler.data<{ createSnapshot: { id: string; imageCount: number } }>(SNAPSHOT, {
        categoryId,
        name: 'v1',
      })
    ).createSnapshot;
    expect(snapshot.imageCount).toBe(2);
    expect(await clients.labeler.errorCode(SNAPSHOT, { categoryId, name: 'v1' })).toBe('CONFLICT');

    // Added after the snapshot: not in it.
    await uploadAndConfirm(clients.labeler, categoryId, 'TRAIN', null, [{ bytes: await pngImage(202) }]);
    await clients.admin.data('mutation($id: ID!) { deleteImage(id: $id) }', { id: kept.id });

    const listed = await clients.viewer.data<{ images: { totalCount: number } }>(
      'query($id: ID!) { images(categoryId: $id) { totalCount } }',
      { id: categoryId },
    );
    expect(listed.images.totalCount).toBe(2);
    const frozen = await clients.viewer.data<{
      snapshot: {
        imageCount: number;
        images: { totalCount: number; edges: Array<{ node: { id: string; deletedAt: string | null } }> };
      };
    }>(SNAPSHOT_IMAGES, { id: snapshot.id });
    expect(frozen.snapshot.images.totalCount).toBe(2);
    expect(frozen.snapshot.images.edges.find((edge) => edge.node.id === kept.id)?.node.deletedAt).not.toBeNull();
    const image = await clients.viewer.data<{ image: { url: string; deletedAt: string | null } }>(
      'query($id: ID!) { image(id: $id) { url deletedAt } }',
      { id: kept.id },
    );
    expect(image.image.deletedAt).not.toBeNull();
    expect((await fetch(image.image.url)).status).toBe(200);
    expect(await probe.keys(`masks/${kept.id}`)).toEqual([`masks/${kept.id}`]);

    const snapshots = await clients.viewer.data<{
      snapshots: Array<{ id: string }>;
      category: { snapshots: Array<{ name: string }> };
    }>('query($id: ID!) { snapshots(categoryId: $id) { id } category(id: $id) { snapshots { name } } }', {
      id: categoryId,
    });
    expect(snapshots.snapshots.map((entry) => entry.id)).toEqual([snapshot.id]);
    expect(snapshots.category.snapshots).toEqual([{ name: 'v1' }]);

    await clients.admin.data('mutation($id: ID!) { deleteSnapshot(id: $id) }', { id: snapshot.id });
    expect(await probe.count('SELECT count(*) FROM image WHERE id = $1', [kept.id])).toBe(0);
    expect(await probe.keys(`images/${kept.id}`)).toEqual([]);
    expect(await probe.keys(`masks/${kept.id}`)).toEqual([]);
    expect(await probe.count('SELECT count(*) FROM image WHERE id = $1', [other.id])).toBe(1);
  });

  test('an image no snapshot lists goes at once; deleteCategory and deleteDataset remove rows and objects, keeping what a snapshot lists', async () => {
    const { datasetId, categoryId } = await createCategory(clients.labeler, 'deletions');
    const first = await uploadAndConfirm(clients.labeler, categoryId, 'TRAIN', null, [
      { bytes: await pngImage(300) },
      { bytes: await pngImage(301) },
    ]);
    const [lone] = first.images;
    if (!lone) throw new Error('no image');
    await clients.admin.data('mutation($id: ID!) { deleteImage(id: $id) }', { id: lone.id });
    expect(await probe.count('SELECT count(*) FROM image WHERE id = $1', [lone.id])).toBe(0);
    expect(await probe.keys(`images/${lone.id}`)).toEqual([]);
    expect(await clients.admin.errorCode('mutation($id: ID!) { deleteImage(id: $id) }', { id: lone.id })).toBe(
      'NOT_FOUND',
    );

    const snapshot = (
      await clients.labeler.data<{ createSnapshot: { id: string } }>(SNAPSHOT, { categoryId, name: 'before delete' })
    ).createSnapshot;
    const second = await createCategory(clients.labeler, 'deletions two');
    await uploadAndConfirm(clients.labeler, second.categoryId, 'TRAIN', null, [{ bytes: await pngImage(302) }]);
    // A pending upload goes with its category too.
    const pendingBytes = await pngImage(303);
    const [pending] = await requestUploads(clients.labeler, categoryId, 'TRAIN', null, [{ bytes: pendingBytes }]);
    if (!pending) throw new Error('no upload target');
    await put(pending.url, pending.headers, pendingBytes);

    await clients.admin.data('mutation($id: ID!) { deleteDataset(id: $id) }', { id: datasetId });
    expect(
      await clients.viewer.data(
        'query($id: ID!, $categoryId: ID!) { dataset(id: $id) { id } category(id: $categoryId) { id } }',
        { id: datasetId, categoryId },
      ),
    ).toEqual({
      dataset: null,
      category: null,
    });
    expect(await probe.keys(`uploads/${pending.uploadId}`)).toEqual([]);
    // The snapshot still lists its image and can be read.
    const frozen = await clients.viewer.data<{ snapshot: { images: { totalCount: number } } }>(SNAPSHOT_IMAGES, {
      id: snapshot.id,
    });
    expect(frozen.snapshot.images.totalCount).toBe(1);
    expect(await probe.count('SELECT count(*) FROM dataset WHERE id = $1', [datasetId])).toBe(1);

    await clients.admin.data('mutation($id: ID!) { deleteSnapshot(id: $id) }', { id: snapshot.id });
    expect(await probe.count('SELECT count(*) FROM image WHERE category_id = $1', [categoryId])).toBe(0);
    expect(await probe.count('SELECT count(*) FROM category WHERE id = $1', [categoryId])).toBe(0);
    expect(await probe.count('SELECT count(*) FROM dataset WHERE id = $1', [datasetId])).toBe(0);
    for (const image of first.images) expect(await probe.keys(`images/${image.id}`)).toEqual([]);

    await clients.admin.data('mutation($id: ID!) { deleteCategory(id: $id) }', { id: second.categoryId });
    expect(await probe.count('SELECT count(*) FROM image WHERE category_id = $1', [second.categoryId])).toBe(0);
    expect(await probe.count('SELECT count(*) FROM category WHERE id = $1', [second.categoryId])).toBe(0);
    expect(
      await clients.admin.errorCode('mutation($id: ID!) { deleteCategory(id: $id) }', { id: second.categoryId }),
    ).toBe('NOT_FOUND');
  });
});
