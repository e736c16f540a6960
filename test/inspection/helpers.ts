// What the inspection tests share: a frontend's view over HTTP (datasets, models, inspections),
// the demo model and generated images in its style, and looks into the server's own database
// and bucket to check what was (and was not) stored.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describeOnnxFile } from '../../src/inference';
import { demoGeneratorSettings, demoModelPath } from '../../src/seed/demo-seed';
import { writeMvtecCategory } from '../../src/synthetic/mvtec-generator';
import { GraphQLTestClient } from '../support/graphql-client';
import type { TestServer } from '../support/test-server';

export const REPOSITORY_ROOT = path.resolve(__dirname, '..', '..');
/** The model the tests serve: the bundled demo model. */
export const TEST_MODEL_PATH = demoModelPath();
export const WRONG_SIGNATURE_MODEL_PATH = path.join(
  REPOSITORY_ROOT,
  'test',
  'fixtures',
  'inference',
  'wrong-signature.onnx',
);

export interface Clients {
  admin: GraphQLTestClient;
  labeler: GraphQLTestClient;
  viewer: GraphQLTestClient;
}

export async function createClients(server: TestServer): Promise<Clients> {
  const admin = new GraphQLTestClient(server.url, server.adminKey);
  const key = async (role: 'LABELER' | 'VIEWER'): Promise<string> => {
    const data = await admin.data<{ createApiKey: { secret: string } }>(
      'mutation($name: String!, $role: Role!) { createApiKey(name: $name, role: $role) { secret } }',
      {
        name: `${role.toLowerCase()} for inspections`,
        role,
      },
    );
    return data.createApiKey.secret;
  };
  return { admin, labeler: admin.withKey(await key('LABELER')), viewer: admin.withKey(await key('VIEWER')) };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface HttpHeader {
  name: string;
  value: string;
}

export interface UploadTarget {
  uploadId: string;
  url: string;
  headers: HttpHeader[];
  expiresAt: string;
}

export async function put(url: string, headers: HttpHeader[], body: Buffer): Promise<void> {
  const response = await fetch(url, {
    method: 'PUT',
    headers: Object.fromEntries(headers.map((header) => [header.name, header.value])),
    body,
  });
  if (!response.ok) throw new Error(`PUT ${url} answered ${response.status}: ${await response.text()}`);
}

export async function createCategory(
  client: GraphQLTestClient,
  datasetName: string,
  categoryName: string,
): Promise<{ datasetId: string; categoryId: string }> {
  const dataset = await client.data<{ createDataset: { id: string } }>(
    'mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }',
    {
      input: { name: datasetName, description: 'inspection tests' },
    },
  );
  const category = await client.data<{ createCategory: { id: string } }>(
    'mutation($input: CreateCategoryInput!) { createCategory(input: $input) { id } }',
    {
      input: { datasetId: dataset.createDataset.id, name: categoryName },
    },
  );
  return { datasetId: dataset.createDataset.id, categoryId: category.createCategory.id };
}

export interface SampleFile {
  bytes: Buffer;
  mask: Buffer | null;
  split: 'TRAIN' | 'TEST';
  defectType: string | null;
}

/** Uploads samples of one split and defect type through presigned URLs; returns their image ids. */
export async function uploadImages(
  client: GraphQLTestClient,
  categoryId: string,
  files: SampleFile[],
): Promise<string[]> {
  const ids: string[] = [];
  for (const file of files) {
    const data = await client.data<{
      requestImageUploads: Array<UploadTarget & { maskUrl: string | null; maskHeaders: HttpHeader[] | null }>;
    }>(
      `mutation($input: RequestImageUploadsInput!) { requestImageUploads(input: $input) { uploadId url headers { name value } maskUrl maskHeaders { name value } expiresAt } }`,
      {
        input: {
          categoryId,
          split: file.split,
          defectType: file.defectType,
          files: [
            {
              filename: 'sample.png',
              contentType: 'image/png',
              byteSize: file.bytes.length,
              sha256: sha256(file.bytes),
              withMask: file.mask !== null,
            },
          ],
        },
      },
    );
    const target = data.requestImageUploads[0];
    if (!target) throw new Error('no upload target');
    await put(target.url, target.headers, file.bytes);
    if (file.mask && target.maskUrl && target.maskHeaders) await put(target.maskUrl, target.maskHeaders, file.mask);
    const confirmed = await client.data<{
      confirmImageUploads: { images: Array<{ id: string }>; refused: Array<{ code: string; message: string }> };
    }>('mutation($ids: [ID!]!) { confirmImageUploads(uploadIds: $ids) { images { id } refused { code message } } }', {
      ids: [target.uploadId],
    });
    const image = confirmed.confirmImageUploads.images[0];
    if (!image) throw new Error(`upload refused: ${JSON.stringify(confirmed.confirmImageUploads.refused)}`);
    ids.push(image.id);
  }
  return ids;
}

export const MODEL_FIELDS = `id categoryId name version status failureCode failureReason sha256 byteSize inputWidth inputHeight mean std
  scoreStats { count min max mean std p50 p95 p99 } mapStats { min max p99 } imageScoreRule proposedThreshold threshold snapshotId
  isActive activatedAt createdAt validatedAt metadata { key value }`;

export interface ModelVersion {
  id: string;
  categoryId: string;
  name: string;
  version: number;
  status: 'VALIDATING' | 'READY' | 'FAILED';
  failureCode: string | null;
  failureReason: string | null;
  sha256: string;
  byteSize: number;
  inputWidth: number | null;
  inputHeight: number | null;
  mean: number[] | null;
  std: number[] | null;
  scoreStats: { count: number; min: number; max: number } | null;
  mapStats: { min: number; max: number; p99: number } | null;
  imageScoreRule: string | null;
  proposedThreshold: number | null;
  threshold: number | null;
  snapshotId: string | null;
  isActive: boolean;
  activatedAt: string | null;
  createdAt: string;
  validatedAt: string | null;
  metadata: Array<{ key: string; value: string }>;
}

export async function requestModelUpload(
  client: GraphQLTestClient,
  bytes: Buffer,
  declaredSha256: string | null = sha256(bytes),
): Promise<UploadTarget> {
  const data = await client.data<{ requestModelUpload: UploadTarget }>(
    'mutation($input: RequestModelUploadInput!) { requestModelUpload(input: $input) { uploadId url headers { name value } expiresAt } }',
    { input: { byteSize: bytes.length, sha256: declaredSha256 } },
  );
  return data.requestModelUpload;
}

export const REGISTER_MODEL = `mutation($input: RegisterModelInput!) { registerModel(input: $input) { ${MODEL_FIELDS} } }`;

/** Upload (presigned PUT) and registerModel, as an admin's client would. */
export async function registerModel(
  client: GraphQLTestClient,
  categoryId: string,
  name: string,
  bytes: Buffer,
  threshold?: number,
): Promise<ModelVersion> {
  const target = await requestModelUpload(client, bytes);
  await put(target.url, target.headers, bytes);
  const data = await client.data<{ registerModel: ModelVersion }>(REGISTER_MODEL, {
    input: { categoryId, name, uploadId: target.uploadId, threshold },
  });
  return data.registerModel;
}

export async function activateModel(client: GraphQLTestClient, id: string): Promise<ModelVersion> {
  return (
    await client.data<{ activateModel: ModelVersion }>(
      `mutation($id: ID!) { activateModel(id: $id) { ${MODEL_FIELDS} } }`,
      { id },
    )
  ).activateModel;
}

export const INSPECTION_FIELDS = `id categoryId score normalizedScore isAnomalous threshold anomalyMapUrl overlayUrl maskUrl inputUrl width height latencyMs createdAt
  regions { x y width height area meanScore maxScore } model { id name version } image { id }`;

export interface Inspection {
  id: string;
  categoryId: string;
  score: number;
  normalizedScore: number;
  isAnomalous: boolean;
  threshold: number;
  anomalyMapUrl: string;
  overlayUrl: string;
  maskUrl: string;
  inputUrl: string | null;
  width: number;
  height: number;
  latencyMs: number;
  createdAt: string;
  regions: Array<{
    x: number;
    y: number;
    width: number;
    height: number;
    area: number;
    meanScore: number;
    maxScore: number;
  }>;
  model: { id: string; name: string; version: number };
  image: { id: string } | null;
}

export const INSPECT = `mutation($input: InspectInput!) { inspect(input: $input) { ${INSPECTION_FIELDS} } }`;

export async function inspect(client: GraphQLTestClient, input: Record<string, unknown>): Promise<Inspection> {
  return (await client.data<{ inspect: Inspection }>(INSPECT, { input })).inspect;
}

export async function readDemoModel(): Promise<Buffer> {
  return readFile(TEST_MODEL_PATH);
}

export interface GeneratedSamples {
  category: string;
  size: number;
  files: SampleFile[];
}

/**
 * Images generated with the settings the demo model was trained with (its metadata says them);
 * the generator's seed fixes the category's look, so only TEST images are new to the model.
 */
export async function generateSamples(
  modelBytes: Buffer,
  counts: { trainCount: number; testGoodCount: number; testDefectCount: number },
): Promise<GeneratedSamples> {
  const settings = demoGeneratorSettings(describeOnnxFile(modelBytes).metadata);
  const directory = await mkdtemp(path.join(process.env.TEST_TMP_DIR ?? os.tmpdir(), 'samples-'));
  try {
    const summary = await writeMvtecCategory({ outDir: directory, ...settings, ...counts });
    const files: SampleFile[] = [];
    for (const file of summary.files) {
      files.push({
        bytes: await readFile(path.join(summary.categoryDir, file.imagePath)),
        mask: file.maskPath ? await readFile(path.join(summary.categoryDir, file.maskPath)) : null,
        split: file.split === 'train' ? 'TRAIN' : 'TEST',
        defectType: file.label === 'good' ? null : file.label,
      });
    }
    return { category: settings.category, size: summary.size, files };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Fetches a presigned URL and reads it as an image. */
export async function fetchImage(url: string): Promise<{
  bytes: Buffer;
  contentType: string | null;
  format: string | undefined;
  width: number | undefined;
  height: number | undefined;
  channels: number | undefined;
}> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  const metadata = await sharp(bytes).metadata();
  return {
    bytes,
    contentType: response.headers.get('content-type'),
    format: metadata.format,
    width: metadata.width,
    height: metadata.height,
    channels: metadata.channels,
  };
}

export { StorageProbe } from '../support/storage-probe';

/** Polls until `check` passes (or throws its last error after `timeoutMs`); for states another process reaches. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
