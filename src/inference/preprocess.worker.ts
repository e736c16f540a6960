/**
 * Piscina worker of the PreprocessPool: image bytes → decoded, resized, normalised tensor, off
 * the event loop (sharp's pipeline set-up, the BMP decoder and the normalisation are
 * synchronous work on the calling thread).
 */
import { ImageValidationError } from '../images/image-bytes';
import { preprocessImage, type PreprocessOptions } from './preprocess';

export interface PreprocessTask {
  bytes: Uint8Array;
  options: PreprocessOptions;
}

export type PreprocessOutcome =
  | { ok: true; tensor: Float32Array; originalWidth: number; originalHeight: number }
  /** ImageValidationError does not survive the thread boundary as a class: its fields do. */
  | { ok: false; code: ImageValidationError['code']; message: string };

export default async function preprocess({ bytes, options }: PreprocessTask): Promise<PreprocessOutcome> {
  try {
    const { tensor, originalWidth, originalHeight } = await preprocessImage(bytes, options);
    return { ok: true, tensor, originalWidth, originalHeight };
  } catch (error) {
    if (error instanceof ImageValidationError) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}
