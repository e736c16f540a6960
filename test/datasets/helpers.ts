// What the dataset tests share: a labeler's view over HTTP, and looks into the server's own
// database and bucket to check that nothing was left behind.
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { GraphQLTestClient } from '../support/graphql-client';
import type { TestServer } from '../support/test-server';

export type Role = 'ADMIN' | 'LABELER' | 'VIEWER';

export interface Clients {
  admin: GraphQLTestClient;
  labeler: GraphQLTestClient;
  viewer: GraphQLTestClient;
}

export async function createClients(server: TestServer): Promise<Clients> {
  const admin = new GraphQLTestClient(server.url, server.adminKey);
  const key = async (role: Role): Promise<string> => {
    const data = await admin.data<{ createApiKey: { secret: string } }>(
      'mutation($name: String!, $role: Role!) { createApiKey(name: $name, role: $role) { secret } }',
      {
        name: `${role.toLowerCase()} for datasets`,
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

/** A small RGB PNG whose bytes differ with `seed`. */
export async function pngImage(seed: number, width = 32, height = 32): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let index = 0; index < pixels.length; index += 1) pixels[index] = (index * 7 + seed * 31) % 251;
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** A binary single-channel PNG mask with a square of `value` in its middle. */
export async function pngMask(width = 32, height = 32, value = 255): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height);
  for (let y = Math.floor(height / 4); y < Math.floor((3 * height) / 4); y += 1) {
    for (let x = Math.floor(width / 4); x < Math.floor((3 * width) / 4); x += 1) pixels[y * width + x] = value;
  }
  return sharp(pixels, { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

export const CREATE_DATASET =
  'mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id name description } }';
export const CREATE_CATEGORY = 'mutation($input: CreateCategoryInput!) { createCategory(input: $input) { id name } }';
export const REQUEST_UPLOADS = `mutation($input: RequestImageUploadsInput!) {
  requestImageUploads(input: $input) { uploadId url maskUrl headers { name value } maskHeaders { name value } expiresAt }
}`;
export const CONFIRM_UPLOADS = `mutation($ids: [ID!]!) {
  confirmImageUploads(uploadIds: $ids) {
    images { id split defectType good width height sha256 originalFilename url maskUrl }
    refused { uploadId code message }
    results { uploadId code image { id } }
  }
}`;

export interface UploadTarget {
  uploadId: string;
  url: string;
  maskUrl: string | null;
  headers: Array<{ name: string; value: string }>;
  maskHeaders: Array<{ name: string; value: string }> | null;
  expiresAt: string;
}

export interface ConfirmedImage {
  id: string;
  split: string;
  defectType: string | null;
  good: boolean;
  width: number;
  height: number;
  sha256: string;
  originalFilename: string;
  url: string;
  maskUrl: string | null;
}

export interface ConfirmResult {
  images: ConfirmedImage[];
  refused: Array<{ uploadId: string; code: string; message: string }>;
  results: Array<{ uploadId: string; code: string | null; image: { id: string } | null }>;
}

export async function createCategory(
  client: GraphQLTestClient,
  datasetName: string,
  categoryName = 'bottle',
): Promise<{ datasetId: string; categoryId: string }> {
  const dataset = await client.data<{ createDataset: { id: string } }>(CREATE_DATASET, {
    input: { name: datasetName, description: 'test data' },
  });
  const category = await client.data<{ createCategory: { id: string } }>(CREATE_CATEGORY, {
    input: { datasetId: dataset.createDataset.id, name: categoryName },
  });
  return { datasetId: dataset.createDataset.id, categoryId: category.createCategory.id };
}

export async function put(url: string, headers: Array<{ name: string; value: string }>, body: Buffer): Promise<void> {
  const response = await fetch(url, {
    method: 'PUT',
    headers: Object.fromEntries(headers.map((header) => [header.name, header.value])),
    body,
  });
  if (!response.ok) throw new Error(`PUT ${url} answered ${response.status}: ${await response.text()}`);
}

export interface FileToUpload {
  bytes: Buffer;
  mask?: Buffer;
  filename?: string;
  contentType?: string;
  /** What to declare, when it should differ from the bytes. */
  declaredSha256?: string;
  declaredByteSize?: number;
}

/** Requests upload URLs for the files (each declared by its own bytes unless told otherwise). */
export async function requestUploads(
  client: GraphQLTestClient,
  categoryId: string,
  split: 'TRAIN' | 'TEST',
  defectType: string | null,
  files: FileToUpload[],
): Promise<UploadTarget[]> {
  const data = await client.data<{ requestImageUploads: UploadTarget[] }>(REQUEST_UPLOADS, {
    input: {
      categoryId,
      split,
      defectType,
      files: files.map((file, index) => ({
        filename: file.filename ?? `${index}.png`,
        contentType: file.contentType ?? 'image/png',
        byteSize: file.declaredByteSize ?? file.bytes.length,
        sha256: file.declaredSha256 ?? sha256(file.bytes),
        withMask: file.mask !== undefined,
      })),
    },
  });
  return data.requestImageUploads;
}

/** The whole labeler flow: request, PUT with plain fetch, confirm. */
export async function uploadAndConfirm(
  client: GraphQLTestClient,
  categoryId: string,
  split: 'TRAIN' | 'TEST',
  defectType: string | null,
  files: FileToUpload[],
): Promise<ConfirmResult> {
  const targets = await requestUploads(client, categoryId, split, defectType, files);
  await Promise.all(
    targets.map(async (target, index) => {
      const file = files[index] as FileToUpload;
      await put(target.url, target.headers, file.bytes);
      if (file.mask && target.maskUrl && target.maskHeaders) await put(target.maskUrl, target.maskHeaders, file.mask);
    }),
  );
  return (
    await client.data<{ confirmImageUploads: ConfirmResult }>(CONFIRM_UPLOADS, {
      ids: targets.map((target) => target.uploadId),
    })
  ).confirmImageUploads;
}

export { StorageProbe } from '../support/storage-probe';
