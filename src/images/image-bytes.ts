/**
 * Decoding and validation of image and mask bytes, independent of where they came from
 * (presigned uploads, dataset imports, inspection requests). Only PNG, JPEG, BMP and TIFF
 * are accepted, recognised by their magic bytes before any decoder sees them, so formats
 * with larger attack surfaces (SVG, HEIF, GIF...) never reach libvips.
 *
 * Every image's pixel count is checked against the limit from its header before anything is
 * decoded, and decoding never runs on the event loop: called from the main thread, the work
 * runs in a worker thread of this module (image-bytes.worker.ts); called from a worker thread
 * (the pre-processing pool), it runs there.
 */
import { isMainThread } from 'node:worker_threads';
import { decode as decodeBmp } from 'bmp-ts';
import Piscina from 'piscina';
import sharp from 'sharp';
import { compiledWorkerFile } from '../utils/worker-file';

export const IMAGE_FORMATS = ['png', 'jpeg', 'bmp', 'tiff'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export const IMAGE_CONTENT_TYPES: Readonly<Record<ImageFormat, string>> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  bmp: 'image/bmp',
  tiff: 'image/tiff',
};

/** Content types a client may declare for an upload. */
export const ACCEPTED_CONTENT_TYPES: ReadonlySet<string> = new Set([
  ...Object.values(IMAGE_CONTENT_TYPES),
  'image/jpg',
  'image/x-ms-bmp',
  'image/tif',
]);

export type ImageProblemCode = 'INVALID_IMAGE' | 'IMAGE_TOO_LARGE' | 'INVALID_MASK' | 'MASK_MISMATCH';

/** Bytes that are not an acceptable image or mask; `code` is the GraphQL error code. */
export class ImageValidationError extends Error {
  override readonly name = 'ImageValidationError';

  constructor(
    readonly code: ImageProblemCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ImageLimits {
  /** Decompression-bomb guard: width × height above this is refused before decoding. */
  maxPixels: number;
}

export interface ImageInfo {
  format: ImageFormat;
  contentType: string;
  width: number;
  height: number;
  /** Colour channels as stored, without alpha: 1 for grayscale, 3 for colour. */
  channels: 1 | 3;
}

export interface MaskInfo {
  format: ImageFormat;
  /** Pixels marked defective. */
  defectPixels: number;
}

export interface DecodedRgb {
  info: ImageInfo;
  /** width × height × 3, row-major, grayscale expanded to three equal channels. */
  pixels: Buffer;
}

/** Recognises the format by magic bytes; null for anything else. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (
    bytes.length >= 8 &&
    bytes[0] === 0x89 &&
    bytes[1] === 0x50 &&
    bytes[2] === 0x4e &&
    bytes[3] === 0x47 &&
    bytes[4] === 0x0d &&
    bytes[5] === 0x0a &&
    bytes[6] === 0x1a &&
    bytes[7] === 0x0a
  ) {
    return 'png';
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d) return 'bmp';
  if (
    bytes.length >= 4 &&
    ((bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 0x2a && bytes[3] === 0x00) ||
      (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0x00 && bytes[3] === 0x2a))
  ) {
    return 'tiff';
  }
  return null;
}

/** Raw pixels straight from the decoder: `channels` interleaved, including alpha if any. */
interface RawPixels {
  format: ImageFormat;
  width: number;
  height: number;
  channels: number;
  /** Whether the source was stored as grayscale (with or without alpha). */
  grayscale: boolean;
  hasAlpha: boolean;
  data: Buffer;
}

function checkPixelCount(width: number, height: number, limits: ImageLimits): void {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new ImageValidationError('INVALID_IMAGE', `the image header gives an impossible size ${width}×${height}`);
  }
  if (width * height > limits.maxPixels) {
    throw new ImageValidationError(
      'IMAGE_TOO_LARGE',
      `the image has ${width}×${height} pixels, more than the ${limits.maxPixels} allowed`,
    );
  }
}

/** PNG: the IHDR chunk must come first (8-byte signature, length 13, "IHDR", width, height). */
function checkPngHeader(bytes: Buffer, limits: ImageLimits): void {
  if (bytes.length < 24 || bytes.readUInt32BE(8) !== 13 || bytes.toString('latin1', 12, 16) !== 'IHDR')
    throw new ImageValidationError('INVALID_IMAGE', 'the PNG has no IHDR header');
  checkPixelCount(bytes.readUInt32BE(16), bytes.readUInt32BE(20), limits);
}

// Uncompressed, bit-field and 8-bit palette BMPs: what cameras and image tools write.
const BMP_SUPPORTED_BITS = new Set([8, 16, 24, 32]);
const BMP_RGB = 0;
const BMP_BITFIELDS = 3;
const BMP_INFO_HEADER_MIN = 40;

interface BmpHeader {
  width: number;
  height: number;
}

/**
 * Size, bit depth and compression from the header, and that the file holds every pixel row it
 * declares: a 54-byte file claiming 7000×7000 is refused here, before bmp-ts would allocate
 * 4 bytes a pixel for it.
 */
function checkBmpHeader(bytes: Buffer, limits: ImageLimits): BmpHeader {
  if (bytes.length < 54) throw new ImageValidationError('INVALID_IMAGE', 'the BMP file is truncated');
  const dataOffset = bytes.readUInt32LE(10);
  const headerSize = bytes.readUInt32LE(14);
  if (headerSize < BMP_INFO_HEADER_MIN)
    throw new ImageValidationError('INVALID_IMAGE', 'this BMP header version is not supported');
  const width = bytes.readInt32LE(18);
  const height = Math.abs(bytes.readInt32LE(22));
  const bits = bytes.readUInt16LE(28);
  const compression = bytes.readUInt32LE(30);
  checkPixelCount(width, height, limits);
  if (!BMP_SUPPORTED_BITS.has(bits) || (compression !== BMP_RGB && compression !== BMP_BITFIELDS)) {
    throw new ImageValidationError(
      'INVALID_IMAGE',
      `BMP with ${bits} bits per pixel and compression ${compression} is not supported; use 8, 24 or 32-bit uncompressed BMP, or PNG`,
    );
  }
  const rowBytes = Math.ceil((width * bits) / 32) * 4;
  if (dataOffset < 14 + headerSize || dataOffset + rowBytes * height > bytes.length) {
    throw new ImageValidationError(
      'INVALID_IMAGE',
      `the BMP file is truncated: ${width}×${height} at ${bits} bits per pixel needs ${dataOffset + rowBytes * height} bytes, it has ${bytes.length}`,
    );
  }
  return { width, height };
}

function decodeBmpPixels(bytes: Buffer, limits: ImageLimits): RawPixels {
  const { width, height } = checkBmpHeader(bytes, limits);
  let decoded;
  try {
    decoded = decodeBmp(bytes);
  } catch (error) {
    throw new ImageValidationError(
      'INVALID_IMAGE',
      `the BMP does not decode: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  // bmp-ts writes ABGR; palette entries of a grayscale BMP have equal R, G and B.
  const pixelCount = width * height;
  const rgb = Buffer.allocUnsafe(pixelCount * 3);
  let grayscale = true;
  for (let pixel = 0, source = 0, target = 0; pixel < pixelCount; pixel += 1, source += 4, target += 3) {
    const red = decoded.data[source + 3] ?? 0;
    const green = decoded.data[source + 2] ?? 0;
    const blue = decoded.data[source + 1] ?? 0;
    rgb[target] = red;
    rgb[target + 1] = green;
    rgb[target + 2] = blue;
    if (grayscale && (red !== green || green !== blue)) grayscale = false;
  }
  return { format: 'bmp', width, height, channels: 3, grayscale, hasAlpha: false, data: rgb };
}

async function decodeWithSharp(format: ImageFormat, bytes: Buffer, limits: ImageLimits): Promise<RawPixels> {
  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new ImageValidationError(
      'INVALID_IMAGE',
      `the ${format.toUpperCase()} does not decode: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  checkPixelCount(metadata.width ?? 0, metadata.height ?? 0, limits);
  try {
    // failOn 'warning' (sharp's default) also refuses truncated data, so every byte has been decoded.
    const { data, info } = await sharp(bytes, {
      limitInputPixels: limits.maxPixels,
      failOn: 'warning',
      sequentialRead: true,
    })
      .raw()
      .toBuffer({ resolveWithObject: true });
    const grayscale = metadata.space === 'b-w' || metadata.space === 'grey16' || info.channels <= 2;
    return {
      format,
      width: info.width,
      height: info.height,
      channels: info.channels,
      grayscale,
      hasAlpha: metadata.hasAlpha ?? false,
      data,
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/pixel limit/i.test(message))
      throw new ImageValidationError('IMAGE_TOO_LARGE', `the image has more than ${limits.maxPixels} pixels`);
    throw new ImageValidationError('INVALID_IMAGE', `the ${format.toUpperCase()} does not decode: ${message}`);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A mask's refusals say INVALID_MASK where an image's say INVALID_IMAGE. */
function refusalAs(problem: ImageProblemCode, error: unknown): unknown {
  return error instanceof ImageValidationError && problem !== 'INVALID_IMAGE' && error.code === 'INVALID_IMAGE'
    ? new ImageValidationError(problem, error.message)
    : error;
}

/**
 * The format, and the size its header declares checked against the limit: PNG and BMP here,
 * JPEG and TIFF by sharp's metadata (which reads only the header) in decodeWithSharp. Cheap
 * and synchronous: callers on the main thread run it before handing the bytes to a thread.
 */
function checkHeader(bytes: Buffer, limits: ImageLimits, problem: ImageProblemCode): ImageFormat {
  const format = sniffImageFormat(bytes);
  if (!format) throw new ImageValidationError(problem, 'the bytes are not a PNG, JPEG, BMP or TIFF image');
  try {
    if (format === 'png') checkPngHeader(bytes, limits);
    else if (format === 'bmp') checkBmpHeader(bytes, limits);
  } catch (error) {
    throw refusalAs(problem, error);
  }
  return format;
}

async function decodePixels(
  bytes: Uint8Array,
  limits: ImageLimits,
  problem: ImageProblemCode = 'INVALID_IMAGE',
): Promise<RawPixels> {
  const buffer = asBuffer(bytes);
  const format = checkHeader(buffer, limits, problem);
  try {
    return format === 'bmp' ? decodeBmpPixels(buffer, limits) : await decodeWithSharp(format, buffer, limits);
  } catch (error) {
    throw refusalAs(problem, error);
  }
}

function infoOf(raw: RawPixels): ImageInfo {
  return {
    format: raw.format,
    contentType: IMAGE_CONTENT_TYPES[raw.format],
    width: raw.width,
    height: raw.height,
    channels: raw.grayscale ? 1 : 3,
  };
}

/**
 * Decodes the whole image (so truncated or corrupt files are refused, not only bad headers)
 * and tells what it is. Throws ImageValidationError: INVALID_IMAGE or IMAGE_TOO_LARGE.
 */
export async function inspectImageBytes(bytes: Uint8Array, limits: ImageLimits): Promise<ImageInfo> {
  if (isMainThread) {
    checkHeader(asBuffer(bytes), limits, 'INVALID_IMAGE');
    return (await inImageThread({ kind: 'inspect', bytes: ownBytes(bytes), limits })) as ImageInfo;
  }
  return infoOf(await decodePixels(bytes, limits));
}

/** Decodes to 8-bit RGB, expanding grayscale to three channels and dropping alpha (for inference). */
export async function decodeImageRgb(bytes: Uint8Array, limits: ImageLimits): Promise<DecodedRgb> {
  if (isMainThread) {
    checkHeader(asBuffer(bytes), limits, 'INVALID_IMAGE');
    const { info, pixels } = (await inImageThread({ kind: 'rgb', bytes: ownBytes(bytes), limits })) as DecodedRgb;
    return { info, pixels: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength) };
  }
  const raw = await decodePixels(bytes, limits);
  const pixelCount = raw.width * raw.height;
  if (raw.channels === 3) return { info: infoOf(raw), pixels: raw.data };
  const pixels = Buffer.allocUnsafe(pixelCount * 3);
  const colourChannels = raw.channels - (raw.hasAlpha ? 1 : 0);
  for (let pixel = 0; pixel < pixelCount; pixel += 1) {
    const source = pixel * raw.channels;
    const target = pixel * 3;
    const red = raw.data[source] ?? 0;
    pixels[target] = red;
    pixels[target + 1] = colourChannels >= 3 ? (raw.data[source + 1] ?? 0) : red;
    pixels[target + 2] = colourChannels >= 3 ? (raw.data[source + 2] ?? 0) : red;
  }
  return { info: infoOf(raw), pixels };
}

/**
 * A ground-truth mask must be grayscale (one channel, or colour channels that are all equal;
 * an alpha channel must be fully opaque), binary (only 0 and 255, or only 0 and 1), mark at
 * least one pixel, and have the size of its image. Throws INVALID_MASK or MASK_MISMATCH.
 */
export async function validateMask(
  bytes: Uint8Array,
  width: number,
  height: number,
  limits: ImageLimits,
): Promise<MaskInfo> {
  if (isMainThread) {
    checkHeader(asBuffer(bytes), limits, 'INVALID_MASK');
    return (await inImageThread({ kind: 'mask', bytes: ownBytes(bytes), width, height, limits })) as MaskInfo;
  }
  const raw = await decodePixels(bytes, limits, 'INVALID_MASK');
  if (raw.width !== width || raw.height !== height) {
    throw new ImageValidationError(
      'MASK_MISMATCH',
      `the mask is ${raw.width}×${raw.height} but its image is ${width}×${height}`,
    );
  }
  const { data, channels, hasAlpha } = raw;
  const colourChannels = channels - (hasAlpha ? 1 : 0);
  let sawOne = false;
  let sawFull = false;
  let defectPixels = 0;
  for (let offset = 0; offset < data.length; offset += channels) {
    const value = data[offset] ?? 0;
    for (let channel = 1; channel < colourChannels; channel += 1) {
      if (data[offset + channel] !== value)
        throw new ImageValidationError('INVALID_MASK', 'the mask has colour; it must be grayscale (single-channel)');
    }
    if (hasAlpha && data[offset + channels - 1] !== 255)
      throw new ImageValidationError('INVALID_MASK', 'the mask has transparent pixels');
    if (value === 0) continue;
    if (value === 255) sawFull = true;
    else if (value === 1) sawOne = true;
    else
      throw new ImageValidationError(
        'INVALID_MASK',
        `the mask is not binary: it has the value ${value} (only 0 and 255, or 0 and 1, are allowed)`,
      );
    defectPixels += 1;
  }
  if (sawOne && sawFull) throw new ImageValidationError('INVALID_MASK', 'the mask mixes 1 and 255; use 0/255 or 0/1');
  if (defectPixels === 0) throw new ImageValidationError('INVALID_MASK', 'the mask marks no defective pixel');
  return { format: raw.format, defectPixels };
}

// --- The worker thread of callers on the main thread ------------------------------------------

/** What image-bytes.worker.ts runs: one of this module's functions, on its own thread. */
export type ImageTask =
  | { kind: 'inspect'; bytes: Uint8Array; limits: ImageLimits }
  | { kind: 'rgb'; bytes: Uint8Array; limits: ImageLimits }
  | { kind: 'mask'; bytes: Uint8Array; width: number; height: number; limits: ImageLimits };

export type ImageTaskOutcome =
  | { ok: true; value: ImageInfo | DecodedRgb | MaskInfo }
  /** ImageValidationError does not survive the thread boundary as a class: its fields do. */
  | { ok: false; code: ImageProblemCode; message: string };

/**
 * One thread from the first use on (none in a process that never decodes on its main thread),
 * a second one while there is work for it. Idle, they never keep the process alive.
 */
const IMAGE_THREADS = 2;
const IMAGE_THREAD_IDLE_MS = 30_000;
let imageThreads: Piscina<ImageTask, ImageTaskOutcome> | undefined;

async function inImageThread(task: ImageTask): Promise<ImageInfo | DecodedRgb | MaskInfo> {
  imageThreads ??= new Piscina<ImageTask, ImageTaskOutcome>({
    filename: compiledWorkerFile(__dirname, 'image-bytes.worker.js', 'image worker'),
    minThreads: 1,
    maxThreads: IMAGE_THREADS,
    idleTimeout: IMAGE_THREAD_IDLE_MS,
    // Most of a task is sharp's own (libuv) threads: a few at once keep them busy.
    concurrentTasksPerWorker: 4,
  });
  const outcome = await imageThreads.run(task);
  if (!outcome.ok) throw new ImageValidationError(outcome.code, outcome.message);
  return outcome.value;
}

/** Stops the image threads (at shutdown: a live thread keeps the process running); a later task starts them again. */
export async function closeImageThreads(): Promise<void> {
  const threads = imageThreads;
  imageThreads = undefined;
  await threads?.destroy();
}

/** The bytes in an ArrayBuffer of their own: a view's whole buffer would be copied to the thread. */
function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** Runs a task on this thread (the entry point of image-bytes.worker.ts). */
export async function runImageTask(task: ImageTask): Promise<ImageTaskOutcome> {
  try {
    if (task.kind === 'inspect') return { ok: true, value: await inspectImageBytes(task.bytes, task.limits) };
    if (task.kind === 'mask')
      return { ok: true, value: await validateMask(task.bytes, task.width, task.height, task.limits) };
    return { ok: true, value: await decodeImageRgb(task.bytes, task.limits) };
  } catch (error) {
    if (error instanceof ImageValidationError) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}
