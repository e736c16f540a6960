// `inspect` of bytes that are no usable image, through the real server over HTTP: truncated
// and corrupt files, decompression bombs and headers that lie get the code upload confirmation
// gives the same bytes (INVALID_IMAGE / IMAGE_TOO_LARGE), the inspection upload is removed, no
// row or object is left, and the process stays healthy. Then admission control: with
// INSPECT_MAX_IN_FLIGHT=2, a burst of inspects gets only answers and QUEUE_FULL, the metrics
// count the refusals, and every slot comes back.
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { objectKeys } from '../../src/storage/object-keys';
import { headerOnlyBmp } from '../support/bmp';
import type { GraphQLTestClient } from '../support/graphql-client';
import { PNG_SIGNATURE, pngChunk, pngDeclaring, pngHeader } from '../support/png';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  activateModel,
  createCategory,
  createClients,
  generateSamples,
  INSPECT,
  inspect,
  put,
  readDemoModel,
  registerModel,
  sha256,
  StorageProbe,
  uploadImages,
  type Clients,
  type HttpHeader,
} from '../inspection/helpers';

const MAX_IN_FLIGHT = 2;
const BURST = 24;

let server: TestServer;
let clients: Clients;
let probe: StorageProbe;
let categoryId: string;
let modelId: string;
let goodImageIds: string[];

beforeAll(async () => {
  server = await startTestServer({
    env: { INSPECT_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT), INSPECT_BATCH_MAX_IMAGES: String(MAX_IN_FLIGHT) },
  });
  clients = await createClients(server);
  probe = new StorageProbe(server);
  const modelBytes = await readDemoModel();
  const samples = await generateSamples(modelBytes, { trainCount: 0, testGoodCount: 3, testDefectCount: 0 });
  ({ categoryId } = await createCategory(clients.labeler, 'hardening', samples.category));
  goodImageIds = await uploadImages(clients.labeler, categoryId, samples.files);
  const model = await registerModel(clients.admin, categoryId, 'demo', modelBytes);
  await activateModel(clients.admin, model.id);
  modelId = model.id;
});

afterAll(async () => {
  await probe?.close();
  await server?.stop();
});

// --- Files ---------------------------------------------------------------------------------

/** A complete, valid 1-bit grayscale PNG of zeros: 900 MP in ~110 KB. */
async function zeroPng(width: number, height: number): Promise<Buffer> {
  const row = Buffer.alloc(1 + Math.ceil(width / 8));
  const deflate = zlib.createDeflate({ level: 9 });
  const compressed: Buffer[] = [];
  deflate.on('data', (chunk: Buffer) => compressed.push(chunk));
  const finished = new Promise((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  const rows = Buffer.concat(Array.from({ length: 1000 }, () => row));
  for (let y = 0; y < height; y += 1000) deflate.write(rows.subarray(0, row.length * Math.min(1000, height - y)));
  deflate.end();
  await finished;
  return Buffer.concat([
    PNG_SIGNATURE,
    pngHeader(width, height, 1, 0),
    pngChunk('IDAT', Buffer.concat(compressed)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A JPEG whose frame header (SOF0) declares another size than its data has. */
function jpegClaiming(jpeg: Buffer, width: number, height: number): Buffer {
  const patched = Buffer.from(jpeg);
  const sof = patched.indexOf(Buffer.from([0xff, 0xc0]));
  if (sof < 0) throw new Error('no SOF0 marker');
  patched.writeUInt16BE(height, sof + 5);
  patched.writeUInt16BE(width, sof + 7);
  return patched;
}

interface BadFile {
  name: string;
  contentType: string;
  bytes: Buffer;
  code: 'INVALID_IMAGE' | 'IMAGE_TOO_LARGE';
}

async function badFiles(): Promise<BadFile[]> {
  const noise = randomBytes(256 * 256 * 3);
  const raw = { raw: { width: 256, height: 256, channels: 3 as const } };
  const png = await sharp(noise, raw).png().toBuffer();
  const jpeg = await sharp(noise, raw).jpeg().toBuffer();
  const badCrc = Buffer.from(png);
  const idat = badCrc.indexOf('IDAT', 0, 'latin1');
  badCrc[idat + 4 + 1000] = (badCrc[idat + 4 + 1000] as number) ^ 0xff;
  return [
    {
      name: 'a truncated PNG',
      contentType: 'image/png',
      bytes: png.subarray(0, png.length >> 1),
      code: 'INVALID_IMAGE',
    },
    { name: 'a PNG with a bad CRC', contentType: 'image/png', bytes: badCrc, code: 'INVALID_IMAGE' },
    {
      name: 'a 30000² PNG of zeros',
      contentType: 'image/png',
      bytes: await zeroPng(30_000, 30_000),
      code: 'IMAGE_TOO_LARGE',
    },
    {
      name: 'a PNG whose header claims 2^30 × 2^30',
      contentType: 'image/png',
      bytes: pngDeclaring(2 ** 30, 2 ** 30),
      code: 'IMAGE_TOO_LARGE',
    },
    {
      name: 'a 54-byte BMP declaring 49 MP',
      contentType: 'image/bmp',
      bytes: headerOnlyBmp(7000, 7000),
      code: 'INVALID_IMAGE',
    },
    {
      name: 'a 54-byte BMP declaring 100 MP',
      contentType: 'image/bmp',
      bytes: headerOnlyBmp(10_000, 10_000),
      code: 'IMAGE_TOO_LARGE',
    },
    {
      name: 'a truncated JPEG',
      contentType: 'image/jpeg',
      bytes: jpeg.subarray(0, jpeg.length >> 1),
      code: 'INVALID_IMAGE',
    },
    {
      name: 'a JPEG whose header claims 60000 × 60000',
      contentType: 'image/jpeg',
      bytes: jpegClaiming(jpeg, 60_000, 60_000),
      code: 'IMAGE_TOO_LARGE',
    },
    {
      name: 'text sent as a PNG',
      contentType: 'image/png',
      bytes: Buffer.from('not an image at all'),
      code: 'INVALID_IMAGE',
    },
  ];
}

// --- What the server holds -----------------------------------------------------------------

/** Rows and objects an inspection or an upload may leave. */
async function stored(): Promise<Record<string, number | string[]>> {
  const rows = async (table: string): Promise<number> => probe.count(`SELECT count(*) FROM ${table}`);
  return {
    inspections: await rows('inspection'),
    inspectionUploads: await rows('inspection_upload'),
    images: await rows('image'),
    imageUploads: await rows('image_upload'),
    inspectionUploadObjects: await probe.keys(objectKeys.inspectionUploadPrefix),
    inspectionObjects: await probe.keys(objectKeys.inspectionPrefix),
    uploadObjects: await probe.keys(objectKeys.uploadPrefix),
    imageObjects: await probe.keys(objectKeys.imagePrefix),
  };
}

async function expectHealthy(): Promise<void> {
  expect(server.child.exitCode).toBeNull();
  expect(server.child.signalCode).toBeNull();
  const health = await clients.viewer.data<{ health: { status: string } }>('{ health { status } }');
  expect(health.health.status).toBe('ok');
}

async function inspectUploadCode(client: GraphQLTestClient, file: BadFile): Promise<string | undefined> {
  const target = (
    await client.data<{ requestInspectionUpload: { uploadId: string; url: string; headers: HttpHeader[] } }>(
      'mutation($input: RequestInspectionUploadInput!) { requestInspectionUpload(input: $input) { uploadId url headers { name value } } }',
      { input: { contentType: file.contentType, byteSize: file.bytes.length } },
    )
  ).requestInspectionUpload;
  await put(target.url, target.headers, file.bytes);
  return client.errorCode(INSPECT, { input: { categoryId, uploadId: target.uploadId } });
}

async function confirmUploadCode(client: GraphQLTestClient, file: BadFile): Promise<string | undefined> {
  const target = (
    await client.data<{ requestImageUploads: Array<{ uploadId: string; url: string; headers: HttpHeader[] }> }>(
      'mutation($input: RequestImageUploadsInput!) { requestImageUploads(input: $input) { uploadId url headers { name value } } }',
      {
        input: {
          categoryId,
          split: 'TEST',
          files: [
            { filename: 'bad', contentType: file.contentType, byteSize: file.bytes.length, sha256: sha256(file.bytes) },
          ],
        },
      },
    )
  ).requestImageUploads[0];
  if (!target) throw new Error('no upload target');
  await put(target.url, target.headers, file.bytes);
  const confirmed = await client.data<{
    confirmImageUploads: { images: Array<{ id: string }>; refused: Array<{ code: string }> };
  }>('mutation($ids: [ID!]!) { confirmImageUploads(uploadIds: $ids) { images { id } refused { code } } }', {
    ids: [target.uploadId],
  });
  expect(confirmed.confirmImageUploads.images).toEqual([]);
  return confirmed.confirmImageUploads.refused[0]?.code;
}

describe('inspect of an uploaded file that is no usable image', () => {
  let files: BadFile[];

  beforeAll(async () => {
    files = await badFiles();
  });

  test('each gets the code upload confirmation gives it; the upload is removed, nothing is stored, the server stays healthy', async () => {
    for (const file of files) {
      const before = await stored();
      const inspected = await inspectUploadCode(clients.labeler, file);
      const confirmed = await confirmUploadCode(clients.labeler, file);
      expect({ file: file.name, inspected, confirmed }).toEqual({
        file: file.name,
        inspected: file.code,
        confirmed: file.code,
      });
      expect(await stored()).toEqual(before);
      await expectHealthy();
    }
  });
});

describe('dataset images whose stored bytes went bad', () => {
  test('inspect and inspectBatch answer INVALID_IMAGE and store nothing', async () => {
    const [good, damaged] = goodImageIds as [string, string];
    const bytes = await probe.store.get(objectKeys.image(damaged));
    await probe.store.put(objectKeys.image(damaged), bytes.subarray(0, bytes.length >> 1), 'image/png');
    const before = await stored();
    expect(await clients.labeler.errorCode(INSPECT, { input: { categoryId, imageId: damaged } })).toBe('INVALID_IMAGE');
    expect(
      await clients.labeler.errorCode('mutation($input: InspectBatchInput!) { inspectBatch(input: $input) { id } }', {
        input: { categoryId, imageIds: [good, damaged] },
      }),
    ).toBe('INVALID_IMAGE');
    expect(await stored()).toEqual(before);
    await expectHealthy();
    goodImageIds = goodImageIds.filter((id) => id !== damaged);
  });
});

// --- Admission -----------------------------------------------------------------------------

async function metricsText(): Promise<string> {
  const response = await fetch(`${server.baseUrl}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one series (0 when it is absent). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('admission control', () => {
  test(`beyond ${MAX_IN_FLIGHT} images in flight, inspects get QUEUE_FULL at once; the metrics count them and every slot comes back`, async () => {
    const refusedBefore = sample(await metricsText(), 'inspection_admission_refused_total');
    const outcomes = new Map<string, number>();
    // Concurrent requests overlap on the server almost always; a few bursts make it certain.
    for (let burst = 0; burst < 5 && !outcomes.has('QUEUE_FULL'); burst += 1) {
      const results = await Promise.all(
        Array.from({ length: BURST }, async (_, index) => {
          const result = await clients.labeler.request<{ inspect: { id: string } }>(INSPECT, {
            input: { categoryId, imageId: goodImageIds[index % goodImageIds.length] },
          });
          return result.errors?.length ? (result.errors[0]?.extensions?.code ?? 'no code') : 'OK';
        }),
      );
      for (const outcome of results) outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    expect([...outcomes.keys()].sort()).toEqual(['OK', 'QUEUE_FULL']);

    const text = await metricsText();
    expect(sample(text, 'inspection_admission_refused_total') - refusedBefore).toBe(outcomes.get('QUEUE_FULL'));
    expect(sample(text, 'inspection_images_in_flight')).toBe(0);
    // Per-model figures, labelled by the loaded model's version id and nothing else.
    const model = `{model_version_id="${modelId}"}`;
    expect(sample(text, `inference_batch_size_count${model}`)).toBeGreaterThan(0);
    expect(sample(text, `inference_request_duration_seconds_count${model}`)).toBeGreaterThan(0);
    expect(text).toContain(`inference_queue_length${model} 0`);
    const labelled = new Set([...text.matchAll(/model_version_id="([^"]*)"/g)].map((match) => match[1]));
    expect([...labelled]).toEqual([modelId]);

    // Every slot came back: as many images as the limit still go through at once.
    const batch = await clients.labeler.data<{ inspectBatch: Array<{ id: string }> }>(
      'mutation($input: InspectBatchInput!) { inspectBatch(input: $input) { id } }',
      { input: { categoryId, imageIds: [goodImageIds[0], goodImageIds[1]] } },
    );
    expect(batch.inspectBatch).toHaveLength(MAX_IN_FLIGHT);
    expect((await inspect(clients.labeler, { categoryId, imageId: goodImageIds[0] })).id).toBeTruthy();
    await expectHealthy();
  });
});
