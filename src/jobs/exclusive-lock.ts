import type pg from 'pg';

const LOCK_NOT_AVAILABLE = '55P03';

/**
 * A PostgreSQL session-level advisory lock held on a connection of its own. If the process
 * holding it dies, PostgreSQL drops the connection and the lock with it, which is how a worker
 * tells a job whose runner crashed from one still running elsewhere.
 */
export class ExclusiveLock {
  private released = false;
  // A held connection that breaks (PostgreSQL gone) loses the lock with it; without a listener its
  // 'error' event would crash the process. release() then drops the connection.
  private readonly ignoreConnectionError = (): void => undefined;

  private constructor(
    private readonly client: pg.PoolClient,
    private readonly key: string,
  ) {
    client.on('error', this.ignoreConnectionError);
  }

  /** Waits up to `waitMs` for the lock (0: do not wait); null if another session holds it. */
  static async acquire(pool: pg.Pool, key: string, waitMs: number): Promise<ExclusiveLock | null> {
    const client = await pool.connect();
    try {
      if (waitMs <= 0) {
        const { rows } = await client.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
          [key],
        );
        if (rows[0]?.locked) return new ExclusiveLock(client, key);
        client.release();
        return null;
      }
      await client.query(`SET lock_timeout = ${Math.ceil(waitMs)}`);
      try {
        await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      } catch (error) {
        if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw error;
        await client.query('RESET lock_timeout');
        client.release();
        return null;
      }
      await client.query('RESET lock_timeout');
      return new ExclusiveLock(client, key);
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.client.off('error', this.ignoreConnectionError);
    try {
      await this.client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.key]);
      this.client.release();
    } catch (error) {
      // A broken connection has lost the lock anyway; drop it from the pool.
      this.client.release(error instanceof Error ? error : true);
    }
  }
}
