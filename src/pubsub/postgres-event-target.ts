import type { TypedEventTarget } from '@graphql-yoga/typed-event-target';
import pg from 'pg';
import type { Logger } from 'pino';

/** One Postgres channel carries every topic; the payload says which. */
const CHANNEL = 'inspection_events';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7900;
const RECONNECT_DELAY_MS = 1000;

type Listener = ((event: CustomEvent) => void) | { handleEvent(event: CustomEvent): void };

/**
 * An EventTarget for @graphql-yoga/subscription's createPubSub whose events travel
 * through PostgreSQL LISTEN/NOTIFY, so every API replica and worker process sees every
 * event. Events must be small (ids and progress counters); subscribers load the rest.
 */
export class PostgresEventTarget implements TypedEventTarget<CustomEvent> {
  private readonly listeners = new Map<string, Set<Listener>>();
  private listenClient?: pg.Client;
  private closed = false;

  private constructor(
    private readonly connectionString: string,
    private readonly publishPool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  static async connect(connectionString: string, publishPool: pg.Pool, logger: Logger): Promise<PostgresEventTarget> {
    const target = new PostgresEventTarget(connectionString, publishPool, logger);
    await target.listen();
    return target;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (message) => this.deliver(message.payload));
    client.on('error', (error) => {
      this.logger.warn({ err: error }, 'event listener connection failed; reconnecting');
      void client.end().catch(() => undefined);
      this.scheduleReconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.listenClient = client;
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    setTimeout(() => {
      if (this.closed) return;
      this.listen().catch((error: unknown) => {
        this.logger.warn({ err: error }, 'event listener reconnect failed');
        this.scheduleReconnect();
      });
    }, RECONNECT_DELAY_MS).unref();
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
    await this.listenClient?.end().catch(() => undefined);
  }
}
