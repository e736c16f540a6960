/**
 * Piscina worker of the PreprocessPool: image bytes → the model's tensor (decoded, resized,
 * normalised) or the decoded RGB pixels, off the event loop (the default pil-bilinear resize,
 * sharp's pipeline set-up, the BMP decoder and the normalisation are synchronous work on the
 * calling thread).
 */
import { ImageValidationError } from '../images/image-bytes';
import { decodeRgb, preprocessImage, type PreprocessOptions, type RgbImage } from './preprocess';

export type PreprocessTask =
  | { kind: 'tensor'; bytes: Uint8Array; options: PreprocessOptions }
  | { kind: 'rgb'; bytes: Uint8Array; maxPixels: number };

export type PreprocessOutcome =
  | { ok: true; tensor: Float32Array; originalWidth: number; originalHeight: number }
  | { ok: true; rgb: RgbImage }
  /** ImageValidationError does not survive the thread boundary as a class: its fields do. */
  | { ok: false; code: ImageValidationError['code']; message: string };

export default async function preprocess(task: PreprocessTask): Promise<PreprocessOutcome> {
  try {
    if (task.kind === 'rgb') return { ok: true, rgb: await decodeRgb(task.bytes, task.maxPixels) };
    const { tensor, originalWidth, originalHeight } = await preprocessImage(task.bytes, task.options);
    return { ok: true, tensor, originalWidth, originalHeight };
  } catch (error) {
    if (error instanceof ImageValidationError) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}
