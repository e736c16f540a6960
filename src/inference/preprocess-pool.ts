import Piscina from 'piscina';
import { ImageValidationError } from '../images/image-bytes';
import { compiledWorkerFile } from '../utils/worker-file';
import { decodeRgb, preprocessImage, type PreprocessOptions, type RgbImage } from './preprocess';
import type { PreprocessOutcome, PreprocessTask } from './preprocess.worker';

/** What the model needs of an image, and the image's own size. */
export interface PreprocessedInput {
  /** float32 CHW [3, H, W], normalised with the model's mean/std. */
  readonly tensor: Float32Array;
  readonly originalWidth: number;
  readonly originalHeight: number;
}

/**
 * Decoding and pre-processing (src/inference/preprocess.ts `preprocessImage`, `decodeRgb`) in
 * worker threads, so that the event loop only moves bytes. That includes the default
 * `pil-bilinear` resize, synchronous JavaScript (~8–15 ms for 1024², ~110–150 ms for 12–17 MP):
 * every inspection and evaluation image is pre-processed through this pool (ModelRunner).
 * With `threads` 0 (PREPROCESS_WORKERS=0, an explicit opt-in) everything runs on the calling
 * thread, the `pil-bilinear` resize blocking its event loop.
 * Throws ImageValidationError (INVALID_IMAGE, IMAGE_TOO_LARGE) as preprocessImage does.
 */
export class PreprocessPool {
  private readonly pool: Piscina<PreprocessTask, PreprocessOutcome> | null;

  constructor(threads: number) {
    this.pool =
      threads > 0
        ? new Piscina<PreprocessTask, PreprocessOutcome>({
            filename: compiledWorkerFile(__dirname, 'preprocess.worker.js', 'pre-processing worker'),
            minThreads: threads,
            maxThreads: threads,
            idleTimeout: Number.POSITIVE_INFINITY,
            // Decoding (and the opt-in sharp-linear resize) runs on sharp's own (libuv) threads: a
            // few tasks at once keep them busy while this thread runs another's pil-bilinear resize.
            concurrentTasksPerWorker: 4,
          })
        : null;
  }

  /** Bytes → the model's input tensor (`preprocessImage`). */
  async preprocess(bytes: Uint8Array, options: PreprocessOptions): Promise<PreprocessedInput> {
    if (!this.pool) return preprocessImage(bytes, options);
    const outcome = await this.run({ kind: 'tensor', bytes, options });
    if (!('tensor' in outcome)) throw new Error('the pre-processing worker answered without a tensor');
    return outcome;
  }

  /** Bytes → 8-bit RGB pixels at the image's own size (`decodeRgb`). */
  async decodeRgb(bytes: Uint8Array, maxPixels: number): Promise<RgbImage> {
    if (!this.pool) return decodeRgb(bytes, maxPixels);
    const outcome = await this.run({ kind: 'rgb', bytes, maxPixels });
    if (!('rgb' in outcome)) throw new Error('the pre-processing worker answered without pixels');
    return outcome.rgb;
  }

  private async run(task: PreprocessTask): Promise<Exclude<PreprocessOutcome, { ok: false }>> {
    const outcome = await (this.pool as Piscina<PreprocessTask, PreprocessOutcome>).run(task);
    if (!outcome.ok) throw new ImageValidationError(outcome.code, outcome.message);
    return outcome;
  }

  /** Stops the threads; tasks still running fail. (Not piscina's close(): it leaves a 30 s timer behind.) */
  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}
