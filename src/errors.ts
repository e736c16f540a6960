import { GraphQLError } from 'graphql';

/**
 * Stable `extensions.code` values. Clients switch on these; never rename one.
 * Domain modules add their own codes here so the full list stays in one place.
 */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  CONFLICT: 'CONFLICT',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  /** A websocket already holds WS_MAX_SUBSCRIPTIONS_PER_CONNECTION open operations. */
  TOO_MANY_SUBSCRIPTIONS: 'TOO_MANY_SUBSCRIPTIONS',

  // Datasets: image and mask validation, uploads, imports.
  INVALID_IMAGE: 'INVALID_IMAGE',
  IMAGE_TOO_LARGE: 'IMAGE_TOO_LARGE',
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  INVALID_MASK: 'INVALID_MASK',
  MASK_MISMATCH: 'MASK_MISMATCH',
  MASK_MISSING: 'MASK_MISSING',
  IMAGE_MISSING: 'IMAGE_MISSING',
  DUPLICATE_IMAGE: 'DUPLICATE_IMAGE',
  UPLOAD_EXPIRED: 'UPLOAD_EXPIRED',
  UPLOAD_INCOMPLETE: 'UPLOAD_INCOMPLETE',
  UNEXPECTED_FILE: 'UNEXPECTED_FILE',
  SOURCE_NOT_FOUND: 'SOURCE_NOT_FOUND',

  // Models and inspections.
  INVALID_MODEL: 'INVALID_MODEL',
  MODEL_NOT_READY: 'MODEL_NOT_READY',
  NO_ACTIVE_MODEL: 'NO_ACTIVE_MODEL',
  QUEUE_FULL: 'QUEUE_FULL',
  INFERENCE_TIMEOUT: 'INFERENCE_TIMEOUT',
  BATCH_TOO_LARGE: 'BATCH_TOO_LARGE',
  MODEL_NOT_LOADED: 'MODEL_NOT_LOADED',
  INFERENCE_CANCELLED: 'INFERENCE_CANCELLED',
  INFERENCE_FAILED: 'INFERENCE_FAILED',
  ENGINE_CLOSED: 'ENGINE_CLOSED',
  /** An inspection image URL: a wrong signature, or past its expiry. */
  INVALID_SIGNATURE: 'INVALID_SIGNATURE',
  URL_EXPIRED: 'URL_EXPIRED',
  /** An overlay not drawn yet whose input image was deleted since. */
  INPUT_IMAGE_GONE: 'INPUT_IMAGE_GONE',
  /**
   * A model version's failureCode: an INT8 file whose guard evaluation, on the snapshot of an fp32
   * version's evaluation, dropped a metric by more than MODEL_ACCURACY_TOLERANCE_POINTS (or
   * did not finish).
   */
  ACCURACY_GUARD: 'ACCURACY_GUARD',

  // Evaluations.
  EVALUATION_NOT_CANCELLABLE: 'EVALUATION_NOT_CANCELLABLE',
  EVALUATION_NOT_FINISHED: 'EVALUATION_NOT_FINISHED',
  EVALUATION_HAS_NO_THRESHOLD: 'EVALUATION_HAS_NO_THRESHOLD',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode] | (string & {});

/** An expected failure: reaches the client with its code and message, never with a stack. */
export class AppError extends GraphQLError {
  constructor(
    readonly code: ErrorCodeValue,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(message, { extensions: { code, ...details } });
    this.name = 'AppError';
  }
}

export const badInput = (message: string, details?: Record<string, unknown>): AppError =>
  new AppError(ErrorCode.BAD_USER_INPUT, message, details);

export const notFound = (what: string, id: string): AppError =>
  new AppError(ErrorCode.NOT_FOUND, `${what} ${id} was not found`, { id });

export const unauthenticated = (message = 'A valid API key is required (Authorization: Bearer <key>)'): AppError =>
  new AppError(ErrorCode.UNAUTHENTICATED, message);

export const forbidden = (message = 'Your API key does not have the role this operation needs'): AppError =>
  new AppError(ErrorCode.FORBIDDEN, message);

export const conflict = (message: string, details?: Record<string, unknown>): AppError =>
  new AppError(ErrorCode.CONFLICT, message, details);
