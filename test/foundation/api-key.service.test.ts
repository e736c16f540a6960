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

test('ensureAdminKey creates the key, and restores it to ADMIN if it was revoked', async () => {
  const secret = 'scripted-admin-key-0123456789abcdef';
  await service.ensureAdminKey(secret);
  const principal = await service.authenticate(secret);
  expect(principal?.role).toBe(Role.ADMIN);
  await service.revoke(principal?.apiKeyId ?? '');
  await service.ensureAdminKey(secret);
  expect((await service.authenticate(secret))?.role).toBe(Role.ADMIN);
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
