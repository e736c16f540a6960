import type { Logger } from 'pino';

export type ReadinessCheck = () => Promise<void>;

/**
 * Why a check failed, in one word. Callers of /readyz are anonymous: the error itself (hosts,
 * database messages, model ids) goes to the log only.
 */
export type CheckFailure = 'timeout' | 'failed';

export interface ReadinessReport {
  ready: boolean;
  checks: Array<{ name: string; ok: boolean; reason?: CheckFailure }>;
}

export interface LivenessReport {
  alive: boolean;
  checks: Array<{ name: string; ok: boolean }>;
}

export interface ReadinessOptions {
  logger: Logger;
  /** How long a vital dependency may stay down before liveness fails, so that an orchestrator restarts the process. */
  livenessGraceMs: number;
}

const CHECK_TIMEOUT_MS = 3000;

class CheckTimeout extends Error {
  constructor() {
    super(`timed out after ${CHECK_TIMEOUT_MS} ms`);
  }
}

/**
 * What /readyz waits for, and what /healthz watches. The foundation registers the database and
 * the object store; later modules register theirs (e.g. models warmed up).
 */
export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly vital = new Map<string, () => number | null>();
  /** The error last logged per failing check: a probe polled every few seconds logs each failure once. */
  private readonly loggedFailures = new Map<string, string>();

  constructor(private readonly options: ReadinessOptions) {}

  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /**
   * A dependency without which the process cannot serve, whose outage is known without a query
   * (so that /healthz stays cheap): `downSince` is when it went down (epoch ms), null while it is up.
   * Down for longer than the grace period, liveness fails.
   */
  registerVital(name: string, downSince: () => number | null): void {
    this.vital.set(name, downSince);
  }

  async report(): Promise<ReadinessReport> {
    const checks = await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            check(),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new CheckTimeout()), CHECK_TIMEOUT_MS);
            }),
          ]);
          this.recovered(name);
          return { name, ok: true };
        } catch (error) {
          this.failed(name, error);
          return { name, ok: false, reason: error instanceof CheckTimeout ? 'timeout' : 'failed' } as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return { ready: checks.every((check) => check.ok), checks };
  }

  liveness(now = Date.now()): LivenessReport {
    const checks = [...this.vital].map(([name, downSince]) => {
      const since = downSince();
      return { name, ok: since === null || now - since < this.options.livenessGraceMs };
    });
    return { alive: checks.every((check) => check.ok), checks };
  }

  private failed(name: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    if (this.loggedFailures.get(name) === message) return;
    this.loggedFailures.set(name, message);
    this.options.logger.warn({ check: name, err: error }, 'readiness check failed');
  }

  private recovered(name: string): void {
    if (this.loggedFailures.delete(name)) this.options.logger.info({ check: name }, 'readiness check passes again');
  }
}
