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
