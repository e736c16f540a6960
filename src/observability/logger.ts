import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; one line per event, with a request id where there is a request. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'inspection-service' }, timestamp: pino.stdTimeFunctions.isoTime });
}
