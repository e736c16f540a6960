import type { TypedEventTarget } from '@graphql-yoga/typed-event-target';
import pg from 'pg';
import type { Logger } from 'pino';

/** One Postgres channel carries every topic; the payload says which. */
const CHANNEL = 'inspection_events';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7900;
/** Reconnection attempts wait 250 ms, then twice as long each time, up to 5 s (plus up to 20 % jitter). */
const RECONNECT_MIN_DELAY_MS = 250;
const RECONNECT_MAX_DELAY_MS = 5000;
/** A query on the listening connection this often, so that a connection that died silently is noticed. */
const HEARTBEAT_INTERVAL_MS = 10_000;
const HEARTBEAT_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 10_000;

type Listener = ((event: CustomEvent) => void) | { handleEvent(event: CustomEvent): void };

/** The state of the connection notifications arrive on. */
export interface NotificationConnection {
  /** Since when (epoch ms) the connection has been lost; null while it is up. */
  readonly downSince: number | null;
  /**
   * `listener` hears each loss (false) and each return (true, once listening again).
   * Notifications sent in between were missed: state built from them must be reloaded.
   * Returns a function that stops listening.
   */
  onConnectionChange(listener: (connected: boolean) => void): () => void;
}

/**
 * An EventTarget for @graphql-yoga/subscription's createPubSub whose events travel
 * through PostgreSQL LISTEN/NOTIFY, so every API replica and worker process sees every
 * event. Events must be small (ids and progress counters); subscribers load the rest.
 *
 * The listening connection is re-established with backoff whenever it fails (PostgreSQL
 * restarted, network cut, or a heartbeat left unanswered); subscriptions stay open across it.
 */
export class PostgresEventTarget implements TypedEventTarget<CustomEvent>, NotificationConnection {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly connectionListeners = new Set<(connected: boolean) => void>();
  private listenClient?: pg.Client;
  private heartbeat?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private failedAttempts = 0;
  private lostAt: number | null = null;
  private closed = false;

  private constructor(
    private readonly connectionString: string,
    private readonly publishPool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  /** Fails when PostgreSQL cannot be reached at start; later losses are recovered from. */
  static async connect(connectionString: string, publishPool: pg.Pool, logger: Logger): Promise<PostgresEventTarget> {
    const target = new PostgresEventTarget(connectionString, publishPool, logger);
    await target.listen();
    return target;
  }

  get downSince(): number | null {
    return this.lostAt;
  }

  onConnectionChange(listener: (connected: boolean) => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.connectionString,
      keepAlive: true,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    client.on('notification', (message) => this.deliver(message.payload));
    client.on('error', (error) => this.lose(client, error));
    client.on('end', () => this.lose(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listenClient = client;
    this.heartbeat = setInterval(() => this.checkHeartbeat(client), HEARTBEAT_INTERVAL_MS).unref();
  }

  private checkHeartbeat(client: pg.Client): void {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('heartbeat not answered')), HEARTBEAT_TIMEOUT_MS);
    });
    Promise.race([client.query('SELECT 1'), timeout])
      .catch((error: unknown) => this.lose(client, error))
      .finally(() => clearTimeout(timer));
  }

  /** The listening connection failed: drop it and reconnect. Called once or more per failure. */
  private lose(client: pg.Client, error: unknown): void {
    if (this.listenClient !== client || this.closed) return;
    this.listenClient = undefined;
    clearInterval(this.heartbeat);
    // Closes a socket that may still be open (e.g. after an unanswered heartbeat).
    void client.end().catch(() => undefined);
    this.lostAt = Date.now();
    this.logger.warn({ err: error }, 'event listener connection lost; reconnecting');
    this.notifyConnection(false);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const backoff = Math.min(RECONNECT_MAX_DELAY_MS, RECONNECT_MIN_DELAY_MS * 2 ** this.failedAttempts);
    this.reconnectTimer = setTimeout(
      () => {
        if (this.closed) return;
        this.listen().then(
          () => {
            if (this.closed) return;
            this.logger.info({ downForMs: Date.now() - (this.lostAt ?? Date.now()) }, 'event listener reconnected');
            this.failedAttempts = 0;
            this.lostAt = null;
            this.notifyConnection(true);
          },
          (error: unknown) => {
            this.failedAttempts += 1;
            this.logger.debug({ err: error, attempts: this.failedAttempts }, 'event listener reconnect failed');
            this.scheduleReconnect();
          },
        );
      },
      backoff * (1 + Math.random() * 0.2),
    ).unref();
  }

  private notifyConnection(connected: boolean): void {
    for (const listener of this.connectionListeners) {
      try {
        listener(connected);
      } catch (error) {
        this.logger.error({ err: error }, 'event connection listener failed');
      }
    }
  }

  private deliver(payload: string | undefined): void {
    if (!payload) return;
    let message: { topic: string; data: unknown };
    try {
      message = JSON.parse(payload) as { topic: string; data: unknown };
    } catch {
      this.logger.warn({ payload }, 'ignoring malformed event payload');
      return;
    }
    const listeners = this.listeners.get(message.topic);
    if (!listeners) return;
    const event = new CustomEvent(message.topic, { detail: message.data });
    for (const listener of listeners) {
      if (typeof listener === 'function') listener(event);
      else listener.handleEvent(event);
    }
  }

  addEventListener(type: string, callback: Listener | null): void {
    if (!callback) return;
    let listeners = this.listeners.get(type);
    if (!listeners) this.listeners.set(type, (listeners = new Set()));
    listeners.add(callback);
  }

  removeEventListener(type: string, callback: Listener | null): void {
    if (!callback) return;
    const listeners = this.listeners.get(type);
    listeners?.delete(callback);
    if (listeners?.size === 0) this.listeners.delete(type);
  }

  dispatchEvent(event: CustomEvent): boolean {
    const payload = JSON.stringify({ topic: event.type, data: event.detail });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
      throw new Error(
        `event "${event.type}" is ${Buffer.byteLength(payload)} bytes; NOTIFY payloads must stay under 8000`,
      );
    }
    this.publishPool.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]).catch((error: unknown) => {
      this.logger.error({ err: error, topic: event.type }, 'failed to publish event');
    });
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.connectionListeners.clear();
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    await this.listenClient?.end().catch(() => undefined);
  }
}
