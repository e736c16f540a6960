import sharp from 'sharp';
import { decodeImageRgb } from '../images/image-bytes';
import type { RgbTriple } from './model-contract';

/**
 * How the decoded image is resized to the model input (see src/inference/README.md for the
 * measured distance of each to the Python trainer's tensors):
 * - `pil-bilinear` (the default): a TypeScript port of Pillow's BILINEAR resample (the
 *   trainer's); the same bytes as the trainer. Synchronous JavaScript on the calling thread
 *   (~8–15 ms for a 1024² image): the service calls it in a PreprocessPool thread
 *   (preprocess-pool.ts), never on the event loop unless PREPROCESS_WORKERS is 0.
 * - `sharp-linear` (opt-in): libvips `linear` kernel in sharp's thread pool; faster on large
 *   images, but a few grey levels from PIL on noisy downscales, more on upscales.
 */
export type ResizeMethod = 'sharp-linear' | 'pil-bilinear';

export const RESIZE_METHODS: readonly ResizeMethod[] = ['sharp-linear', 'pil-bilinear'];

/** Interleaved 8-bit RGB, row-major, `width * height * 3` bytes. */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** The model input a decoded image is turned into. */
export interface ModelInputOptions {
  /** [height, width] of the model input. */
  readonly inputSize: readonly [height: number, width: number];
  readonly mean: RgbTriple;
  readonly std: RgbTriple;
  /** Default `pil-bilinear` (DEFAULT_RESIZE_METHOD). */
  readonly resize?: ResizeMethod;
}

export interface PreprocessOptions extends ModelInputOptions {
  /** Decompression-bomb guard: larger images are refused (IMAGE_TOO_LARGE) before decoding. */
  readonly maxPixels: number;
}

export interface PreprocessedImage {
  /** float32 CHW [3, H, W], normalised with the model's mean/std. */
  readonly tensor: Float32Array;
  readonly originalWidth: number;
  readonly originalHeight: number;
  /** The decoded image at its original size (for overlays). */
  readonly original: RgbImage;
}

/**
 * Resizes with libvips' `linear` kernel. It runs on an already decoded RGB image: in one sharp
 * pipeline with an alpha channel, libvips premultiplies alpha before resizing, which PIL
 * (converting to RGB first) does not.
 */
export async function resizeRgbSharpLinear(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (image.width === width && image.height === height) return image;
  const { data, info } = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}

// --- Pillow's BILINEAR resample (libImaging/Resample.c), bit for bit --------------------------

/** Pillow's fixed-point precision for 8-bit images: 32 - 8 - 2. */
const PRECISION_BITS = 22;
const PRECISION_SCALE = 1 << PRECISION_BITS;

interface ResampleCoefficients {
  /** Taps per output sample. */
  readonly kernelSize: number;
  /** First input index and tap count of each output sample. */
  readonly bounds: Int32Array;
  /** Fixed-point weights, `kernelSize` per output sample. */
  readonly weights: Int32Array;
}

/**
 * Pillow's `precompute_coeffs` with the triangle filter, then `normalize_coeffs_8bpc`. When
 * shrinking, the triangle widens by the scale factor (that is the antialiasing); doubles as in C.
 */
function bilinearCoefficients(inSize: number, outSize: number): ResampleCoefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // triangle support 1.0 × filterScale
  const kernelSize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * kernelSize);
  const raw = new Float64Array(kernelSize);
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    const first = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - first;
    let total = 0;
    for (let k = 0; k < count; k++) {
      const distance = Math.abs((k + first - center + 0.5) / filterScale);
      raw[k] = distance < 1 ? 1 - distance : 0;
      total += raw[k];
    }
    for (let k = 0; k < count; k++) {
      const weight = total !== 0 ? raw[k] / total : raw[k];
      weights[out * kernelSize + k] =
        weight < 0 ? Math.trunc(-0.5 + weight * PRECISION_SCALE) : Math.trunc(0.5 + weight * PRECISION_SCALE);
    }
    bounds[out * 2] = first;
    bounds[out * 2 + 1] = count;
  }
  return { kernelSize, bounds, weights };
}

/** Pillow's `clip8`: rounds a fixed-point sum (already offset by half) back to a byte. */
function clip8(sum: number): number {
  if (sum <= 0) return 0;
  if (sum >= PRECISION_SCALE * 256) return 255;
  return Math.floor(sum / PRECISION_SCALE);
}

/**
 * Pillow's `Image.resize(size, Image.BILINEAR)` of an RGB image: a horizontal pass into an
 * 8-bit intermediate (only the rows the vertical pass reads), then a vertical pass, each with
 * Pillow's fixed-point rounding, so the output bytes equal Pillow's.
 */
export function resizeRgbPilBilinear(image: RgbImage, width: number, height: number): RgbImage {
  const { data: source, width: sourceWidth, height: sourceHeight } = image;
  if (sourceWidth === width && sourceHeight === height) return image;
  const horizontal = bilinearCoefficients(sourceWidth, width);
  const vertical = bilinearCoefficients(sourceHeight, height);
  const half = PRECISION_SCALE / 2;

  let rows = source;
  let rowOffset = 0;
  if (sourceWidth !== width) {
    const firstRow = vertical.bounds[0];
    const lastRow = vertical.bounds[height * 2 - 2] + vertical.bounds[height * 2 - 1];
    rows = new Uint8Array(width * (lastRow - firstRow) * 3);
    for (let y = firstRow; y < lastRow; y++) {
      const sourceRow = y * sourceWidth * 3;
      const targetRow = (y - firstRow) * width * 3;
      for (let x = 0; x < width; x++) {
        const first = horizontal.bounds[x * 2];
        const count = horizontal.bounds[x * 2 + 1];
        const k0 = x * horizontal.kernelSize;
        let red = half;
        let green = half;
        let blue = half;
        for (let k = 0; k < count; k++) {
          const weight = horizontal.weights[k0 + k];
          const p = sourceRow + (first + k) * 3;
          red += source[p] * weight;
          green += source[p + 1] * weight;
          blue += source[p + 2] * weight;
        }
        const t = targetRow + x * 3;
        rows[t] = clip8(red);
        rows[t + 1] = clip8(green);
        rows[t + 2] = clip8(blue);
      }
    }
    rowOffset = firstRow;
  }
  if (sourceHeight === height) return { data: rows, width, height };

  const output = new Uint8Array(width * height * 3);
  const stride = width * 3;
  for (let y = 0; y < height; y++) {
    const first = vertical.bounds[y * 2] - rowOffset;
    const count = vertical.bounds[y * 2 + 1];
    const k0 = y * vertical.kernelSize;
    const targetRow = y * stride;
    for (let i = 0; i < stride; i++) {
      let sum = half;
      for (let k = 0; k < count; k++) sum += rows[(first + k) * stride + i] * vertical.weights[k0 + k];
      output[targetRow + i] = clip8(sum);
    }
  }
  return { data: output, width, height };
}

/**
 * Interleaved RGB bytes to a float32 CHW tensor, `(v / 255 - mean) / std` per channel computed
 * in double and rounded once to float32, exactly as the trainer's numpy code does.
 */
export function normalizeToChw(image: RgbImage, mean: RgbTriple, std: RgbTriple): Float32Array {
  const plane = image.width * image.height;
  const tensor = new Float32Array(3 * plane);
  for (let channel = 0; channel < 3; channel++) {
    const m = mean[channel];
    const s = std[channel];
    const offset = channel * plane;
    for (let i = 0; i < plane; i++) tensor[offset + i] = (image.data[i * 3 + channel] / 255 - m) / s;
  }
  return tensor;
}

/**
 * Decodes PNG, JPEG, BMP or TIFF bytes to 8-bit RGB with the dataset module's decoder (the same
 * one that validates uploads): the format is recognised by its magic bytes first, BMP (which
 * libvips lacks) decoded by that module itself; greyscale expanded to three channels, alpha
 * dropped without compositing, as PIL's `convert("RGB")` does. Throws its ImageValidationError
 * (INVALID_IMAGE, IMAGE_TOO_LARGE).
 */
export async function decodeRgb(bytes: Uint8Array, maxPixels: number): Promise<RgbImage> {
  const { info, pixels } = await decodeImageRgb(bytes, { maxPixels });
  return {
    data: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    width: info.width,
    height: info.height,
  };
}

export const DEFAULT_RESIZE_METHOD: ResizeMethod = 'pil-bilinear';

/**
 * Resize to the model input, normalise: the trainer's pre-processing of a decoded image. With
 * `pil-bilinear` (the default) the resize is synchronous work on the calling thread.
 */
export async function toModelInput(original: RgbImage, options: ModelInputOptions): Promise<Float32Array> {
  const [height, width] = options.inputSize;
  const resized =
    (options.resize ?? DEFAULT_RESIZE_METHOD) === 'pil-bilinear'
      ? resizeRgbPilBilinear(original, width, height)
      : await resizeRgbSharpLinear(original, width, height);
  return normalizeToChw(resized, options.mean, options.std);
}

/** Decode, RGB, resize to the model input, normalise: the trainer's pre-processing. */
export async function preprocessImage(bytes: Uint8Array, options: PreprocessOptions): Promise<PreprocessedImage> {
  const original = await decodeRgb(bytes, options.maxPixels);
  return {
    tensor: await toModelInput(original, options),
    originalWidth: original.width,
    originalHeight: original.height,
    original,
  };
}
