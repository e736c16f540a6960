import { AppError, ErrorCode } from '../errors';

/** `extensions.code` values of the inference engine's expected failures. */
export const InferenceErrorCode = {
  QUEUE_FULL: ErrorCode.QUEUE_FULL,
  INFERENCE_TIMEOUT: ErrorCode.INFERENCE_TIMEOUT,
  INVALID_MODEL: ErrorCode.INVALID_MODEL,
  MODEL_NOT_LOADED: ErrorCode.MODEL_NOT_LOADED,
  INFERENCE_CANCELLED: ErrorCode.INFERENCE_CANCELLED,
  ENGINE_CLOSED: ErrorCode.ENGINE_CLOSED,
  INFERENCE_FAILED: ErrorCode.INFERENCE_FAILED,
} as const;

export type InferenceErrorCodeValue = (typeof InferenceErrorCode)[keyof typeof InferenceErrorCode];

/** The model's queue already holds `maxQueueLength` requests; the caller may retry later. */
export class QueueFullError extends AppError {
  constructor(modelKey: string, maxQueueLength: number) {
    super(
      InferenceErrorCode.QUEUE_FULL,
      `The inference queue of model "${modelKey}" is full (${maxQueueLength} requests waiting); retry later`,
      { modelKey, maxQueueLength },
    );
    this.name = 'QueueFullError';
  }
}

export class InferenceTimeoutError extends AppError {
  constructor(modelKey: string, timeoutMs: number, stage: 'queued' | 'running') {
    super(
      InferenceErrorCode.INFERENCE_TIMEOUT,
      `Inference on model "${modelKey}" did not finish within ${timeoutMs} ms (still ${stage})`,
      { modelKey, timeoutMs, stage },
    );
    this.name = 'InferenceTimeoutError';
  }
}

export class ModelNotLoadedError extends AppError {
  constructor(modelKey: string) {
    super(InferenceErrorCode.MODEL_NOT_LOADED, `Model "${modelKey}" is not loaded in the inference engine`, {
      modelKey,
    });
    this.name = 'ModelNotLoadedError';
  }
}

/** The file is not ONNX, or breaks docs/model-contract.md; `problems` lists every finding. */
export class InvalidModelError extends AppError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(InferenceErrorCode.INVALID_MODEL, `Invalid model: ${problems.join('; ')}`, { problems: [...problems] });
    this.name = 'InvalidModelError';
    this.problems = problems;
  }
}

export class InferenceCancelledError extends AppError {
  constructor(modelKey: string) {
    super(InferenceErrorCode.INFERENCE_CANCELLED, `Inference on model "${modelKey}" was cancelled`, { modelKey });
    this.name = 'InferenceCancelledError';
  }
}

export class EngineClosedError extends AppError {
  constructor() {
    super(InferenceErrorCode.ENGINE_CLOSED, 'The inference engine is shut down');
    this.name = 'EngineClosedError';
  }
}

/** onnxruntime itself failed on a batch (not a contract problem): an internal error. */
export class InferenceFailedError extends AppError {
  constructor(modelKey: string, reason: string) {
    super(InferenceErrorCode.INFERENCE_FAILED, `Inference on model "${modelKey}" failed: ${reason}`, { modelKey });
    this.name = 'InferenceFailedError';
  }
}
