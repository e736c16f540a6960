import pg from 'pg';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { Role } from '../../src/auth/principal';
import { ApiKeyEntity } from '../../src/db/entities/api-key.entity';
import { Database } from '../../src/db/repositories';
import { PostgresEventTarget } from '../../src/pubsub/postgres-event-target';
import { createAppPubSub } from '../../src/pubsub/pubsub';
import { ApiKeyService } from '../../src/services/api-key.service';
import { createMigratedDataSource } from '../support/resources';

let dataSource: DataSource;
let service: ApiKeyService;

beforeAll(async () => {
  dataSource = await createMigratedDataSource();
  service = new ApiKeyService(new Database(dataSource));
});

afterAll(async () => {
  await dataSource?.destroy();
});

test('the first admin key is created once, even by concurrent starts', async () => {
  const secrets = await Promise.all([
    service.createInitialAdminKey(),
    service.createInitialAdminKey(),
    service.createInitialAdminKey(),
  ]);
  expect(secrets.filter((secret) => secret !== null)).toHaveLength(1);
  expect(await service.createInitialAdminKey()).toBeNull();
});

test('secrets are stored hashed and authenticate to their principal', async () => {
  const { apiKey, secret } = await service.create('labeling station 3', Role.LABELER);
  const row = await dataSource.getRepository(ApiKeyEntity).findOneByOrFail({ id: apiKey.id });
  expect(row.secretHash).toHaveLength(32);
  expect(row.secretHash.toString('utf8')).not.toContain(secret.slice(4, 20));
  const rawRow: Array<Record<string, unknown>> = await dataSource.query('SELECT * FROM api_key WHERE id = $1', [
    apiKey.id,
  ]);
  expect(JSON.stringify(rawRow)).not.toContain(secret);

  expect(await service.authenticate(secret)).toEqual({
    apiKeyId: apiKey.id,
    name: 'labeling station 3',
    role: Role.LABELER,
  });
  expect(await service.authenticate(`${secret}x`)).toBeNull();
});

test('a revoked key no longer authenticates; revoking twice keeps the first time', async () => {
  const { apiKey, secret } = await service.create('temporary', Role.VIEWER);
  const first = await service.revoke(apiKey.id);
  const second = await service.revoke(apiKey.id);
  expect(second.revokedAt?.getTime()).toBe(first.revokedAt?.getTime());
  expect(await service.authenticate(secret)).toBeNull();
});

test('ensureAdminKey creates the ADMIN key once, and a revoked one stays revoked (with a warning)', async () => {
  const secret = 'scripted-admin-key-0123456789abcdef';
  const logLines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => logLines.push(line) });
  const keys = dataSource.getRepository(ApiKeyEntity);

  await service.ensureAdminKey(secret, logger);
  await service.ensureAdminKey(secret, logger);
  const principal = await service.authenticate(secret);
  expect(principal?.role).toBe(Role.ADMIN);
  expect(await keys.countBy({ name: 'ADMIN_API_KEY' })).toBe(1);
  expect(logLines).toEqual([]);

  const { revokedAt } = await service.revoke(principal?.apiKeyId ?? '');
  const rowsBefore = await keys.count();
  // The next start with the same ADMIN_API_KEY.
  await service.ensureAdminKey(secret, logger);

  expect(await service.authenticate(secret)).toBeNull();
  const row = await keys.findOneByOrFail({ id: principal?.apiKeyId ?? '' });
  expect(row.revokedAt?.getTime()).toBe(revokedAt?.getTime());
  expect(await keys.count()).toBe(rowsBefore);
  expect(logLines).toHaveLength(1);
  const warning = JSON.parse(logLines[0] as string) as { level: number; msg: string; apiKeyId: string };
  expect(warning).toMatchObject({ level: 40, apiKeyId: principal?.apiKeyId });
  expect(warning.msg).toMatch(/ADMIN_API_KEY is a revoked API key: it stays revoked/);
  expect(logLines[0]).not.toContain(secret);
});

test('a key remembered by another process is forgotten there as soon as it is revoked here (over the pub/sub)', async () => {
  const url = (dataSource.options as { url: string }).url;
  const logger = pino({ level: 'silent' });
  // Two event targets and two services, as two server processes would have.
  const pools = [new pg.Pool({ connectionString: url, max: 1 }), new pg.Pool({ connectionString: url, max: 1 })];
  const targets = await Promise.all(pools.map((pool) => PostgresEventTarget.connect(url, pool, logger)));
  const [here, there] = targets.map((target) => new ApiKeyService(new Database(dataSource), createAppPubSub(target)));
  try {
    const { apiKey, secret } = await (here as ApiKeyService).create('remembered elsewhere', Role.VIEWER);
    expect((await (there as ApiKeyService).authenticate(secret))?.apiKeyId).toBe(apiKey.id);
    // Remembered there now: without the event it would authenticate for another 10 s.
    await (here as ApiKeyService).revoke(apiKey.id);
    const deadline = Date.now() + 5_000;
    while ((await (there as ApiKeyService).authenticate(secret)) !== null && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await (there as ApiKeyService).authenticate(secret)).toBeNull();
    expect(Date.now()).toBeLessThan(deadline);
  } finally {
    await Promise.all([here?.close(), there?.close()]);
    await Promise.all(targets.map((target) => target.close()));
    await Promise.all(pools.map((pool) => pool.end()));
  }
});

test('a revocation made while the event connection was lost still reaches the listeners once it is back', async () => {
  const url = (dataSource.options as { url: string }).url;
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const target = await PostgresEventTarget.connect(url, pool, pino({ level: 'silent' }));
  const listening = new ApiKeyService(new Database(dataSource), createAppPubSub(target));
  const heard: string[] = [];
  listening.onRevoked((apiKeyId) => heard.push(apiKeyId));
  try {
    const { apiKey } = await service.create('revoked unheard', Role.VIEWER);
    // Revoked without an event, as by a replica whose notification was lost with the connection.
    await new Database(dataSource).apiKeys.markRevoked(apiKey.id, new Date());
    await pool.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [new URL(url).pathname.slice(1)],
    );
    const deadline = Date.now() + 30_000;
    while (!heard.includes(apiKey.id) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(heard).toContain(apiKey.id);
  } finally {
    await listening.close();
    await target.close();
    await pool.end();
  }
});
