/**
 * An embedded server (PostgreSQL, S3) could not start or stopped on its own. The message says what
 * happened and what to do in one line: the process prints it and exits 1, without a stack.
 */
export class EmbeddedServerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EmbeddedServerError';
  }
}

/** An error's message on one line (PostgreSQL and system errors can span several). */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
