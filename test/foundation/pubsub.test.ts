import pg from 'pg';
import pino from 'pino';
import { PostgresEventTarget } from '../../src/pubsub/postgres-event-target';
import { createAppPubSub } from '../../src/pubsub/pubsub';
import { createTestDatabase } from '../support/resources';

test('an event published by one process reaches subscribers in another, through Postgres', async () => {
  const url = await createTestDatabase();
  const logger = pino({ level: 'silent' });
  // Two independent connections and event targets, as two server processes would have.
  const poolA = new pg.Pool({ connectionString: url, max: 1 });
  const poolB = new pg.Pool({ connectionString: url, max: 1 });
  const targetA = await PostgresEventTarget.connect(url, poolA, logger);
  const targetB = await PostgresEventTarget.connect(url, poolB, logger);
  const pubSubA = createAppPubSub(targetA);
  const pubSubB = createAppPubSub(targetB);
  try {
    const subscription = pubSubB.subscribe('API_KEY_EVENT');
    const iterator = subscription[Symbol.asyncIterator]();
    const next = iterator.next();
    // subscribe() registers its listener lazily, on the first next().
    await new Promise((resolve) => setTimeout(resolve, 50));
    pubSubA.publish('API_KEY_EVENT', { kind: 'REVOKED', apiKeyId: 'abc' });
    const received = await next;
    expect(received.value).toEqual({ kind: 'REVOKED', apiKeyId: 'abc' });
    await iterator.return?.();
  } finally {
    await targetA.close();
    await targetB.close();
    await poolA.end();
    await poolB.end();
  }
});

test('an event too large for NOTIFY is refused where it is published', async () => {
  const url = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const target = await PostgresEventTarget.connect(url, pool, pino({ level: 'silent' }));
  try {
    expect(() => target.dispatchEvent(new CustomEvent('BIG', { detail: 'x'.repeat(9000) }))).toThrow(/under 8000/);
  } finally {
    await target.close();
    await pool.end();
  }
});
