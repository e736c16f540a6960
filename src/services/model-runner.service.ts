import { AppError } from '../errors';
import { ImageValidationError } from '../images/image-bytes';
import {
  ModelNotLoadedError,
  type InferenceEngine,
  type InferenceResult,
  type InferOptions,
  type LoadedModel,
  type ResizeMethod,
} from '../inference';
import type { PreprocessedInput, PreprocessPool } from '../inference/preprocess-pool';
import type { ModelInputOptions } from '../inference/preprocess';
import type { LoadableModel, ModelLoaderService } from './model-loader.service';

export interface ModelRunnerSettings {
  resize: ResizeMethod;
  /** Decompression-bomb guard of the decoder. */
  imageMaxPixels: number;
}

/** Image bytes the model cannot take: INVALID_IMAGE or IMAGE_TOO_LARGE, with the decoder's message. */
export class ImageInputError extends AppError {}

/** One image through the model, and where the time went. */
export interface Prediction {
  loaded: LoadedModel;
  /** The image's own size (results are given at it). */
  originalWidth: number;
  originalHeight: number;
  result: InferenceResult;
  /** Loading the model (when it is not yet), then decoding, resizing and normalising. */
  prepareMs: number;
  /** Waiting for and running the model. */
  inferMs: number;
}

/**
 * Image bytes → tensor → model → result, the same way for inspections and evaluations (what
 * anomalib calls an inferencer): the model loaded through the ModelLoaderService, the bytes
 * pre-processed as the trainer does (src/inference/preprocess.ts), one error for bytes that are
 * no usable image, and one rule for a model evicted or replaced between loading and running:
 * it is loaded again, once. Post-processing is the caller's.
 */
export class ModelRunner {
  constructor(
    private readonly engine: InferenceEngine,
    private readonly loader: ModelLoaderService,
    private readonly preprocessing: PreprocessPool,
    private readonly settings: ModelRunnerSettings,
  ) {}

  /** The timeout of interactive requests: `infer`'s default; batches have none unless given one. */
  get requestTimeoutMs(): number {
    return this.engine.options.requestTimeoutMs;
  }

  /** The model loaded and warmed up in this process (loaded once, however many ask). */
  load(model: LoadableModel): Promise<LoadedModel> {
    return this.loader.ensureLoaded(model);
  }

  /**
   * Decodes the bytes and makes the model's input tensor, in a pre-processing thread
   * (PreprocessPool). Throws ImageInputError.
   */
  preprocess(bytes: Uint8Array, loaded: LoadedModel): Promise<PreprocessedInput> {
    return rejectingAsImageInput(
      this.preprocessing.preprocess(bytes, { ...this.inputOptions(loaded), maxPixels: this.settings.imageMaxPixels }),
    );
  }

  /** One image: the model loaded (if it is not yet), the tensor made, then run batched with concurrent requests. */
  async predict(model: LoadableModel, bytes: Uint8Array): Promise<Prediction> {
    const started = performance.now();
    const loaded = await this.load(model);
    const { tensor, originalWidth, originalHeight } = await this.preprocess(bytes, loaded);
    const prepared = performance.now();
    const result = await this.infer(model, loaded, tensor);
    return {
      loaded,
      originalWidth,
      originalHeight,
      result,
      prepareMs: prepared - started,
      inferMs: performance.now() - prepared,
    };
  }

  /** One tensor through the model (`engine.infer`). */
  infer(
    model: LoadableModel,
    loaded: LoadedModel,
    tensor: Float32Array,
    options: InferOptions = {},
  ): Promise<InferenceResult> {
    return this.reloadingOnce(model, loaded, (key) => this.engine.infer(key, tensor, options));
  }

  /**
   * Many tensors through the model (`engine.inferBatch`), results in input order. With
   * `asOneBatch`, as model batches of fixed composition: consecutive chunks of at most the
   * engine's maxBatchSize, each run alone, so the same tensors always give bit-identical
   * outputs (some models' outputs differ in the last bit between batch sizes).
   */
  inferBatch(
    model: LoadableModel,
    loaded: LoadedModel,
    tensors: readonly Float32Array[],
    options: InferOptions = {},
  ): Promise<InferenceResult[]> {
    if (!options.asOneBatch)
      return this.reloadingOnce(model, loaded, (key) => this.engine.inferBatch(key, tensors, options));
    const chunkSize = this.engine.options.maxBatchSize;
    const chunks: Array<readonly Float32Array[]> = [];
    for (let start = 0; start < tensors.length; start += chunkSize)
      chunks.push(tensors.slice(start, start + chunkSize));
    return this.reloadingOnce(model, loaded, async (key) => {
      const results = await Promise.all(chunks.map((chunk) => this.engine.inferBatch(key, chunk, options)));
      return results.flat();
    });
  }

  private inputOptions(loaded: LoadedModel): ModelInputOptions {
    return {
      inputSize: loaded.inputSize,
      mean: loaded.metadata.mean,
      std: loaded.metadata.std,
      resize: this.settings.resize,
    };
  }

  /** A model evicted or replaced between loading and running is loaded again, once. */
  private async reloadingOnce<T>(
    model: LoadableModel,
    loaded: LoadedModel,
    run: (key: string) => Promise<T>,
  ): Promise<T> {
    try {
      return await run(loaded.key);
    } catch (error) {
      if (!(error instanceof ModelNotLoadedError)) throw error;
      const reloaded = await this.load(model);
      return run(reloaded.key);
    }
  }
}

function rejectingAsImageInput<T>(decoding: Promise<T>): Promise<T> {
  return decoding.catch((error: unknown) => {
    throw error instanceof ImageValidationError ? new ImageInputError(error.code, error.message) : error;
  });
}
