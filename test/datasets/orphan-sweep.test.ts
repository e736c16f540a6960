// The periodic sweep: expired pending uploads and objects that no row refers to go; everything
// a row refers to stays.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { Database } from '../../src/db/repositories';
import { objectKeys } from '../../src/storage/object-keys';
import type { ObjectStore } from '../../src/storage/object-store';
import { OrphanSweepService } from '../../src/services/orphan-sweep.service';
import { createMigratedDataSource, createTestObjectStore } from '../support/resources';

let dataSource: DataSource;
let store: ObjectStore;

beforeAll(async () => {
  dataSource = await createMigratedDataSource();
  store = await createTestObjectStore();
});

afterAll(async () => {
  store?.destroy();
  await dataSource?.destroy();
});

async function keys(): Promise<string[]> {
  const found: string[] = [];
  for (const prefix of [
    'uploads/',
    'images/',
    'masks/',
    'models/',
    'model-uploads/',
    'inspections/',
    'inspection-uploads/',
    'evaluations/',
    'incoming/',
  ]) {
    for await (const object of store.list(prefix)) found.push(object.key);
  }
  return found.sort();
}

test('removes expired uploads and objects without rows, keeps what rows refer to', async () => {
  const [dataset] = await dataSource.query<Array<{ id: string }>>(
    `INSERT INTO dataset (name) VALUES ('sweep') RETURNING id`,
  );
  const [category] = await dataSource.query<Array<{ id: string }>>(
    `INSERT INTO category (dataset_id, name) VALUES ($1, 'bottle') RETURNING id`,
    [dataset?.id],
  );
  const pending = randomUUID();
  const expired = randomUUID();
  for (const [id, expiresAt] of [
    [pending, "now() + interval '1 hour'"],
    [expired, "now() - interval '1 minute'"],
  ] as const) {
    await dataSource.query(
      `INSERT INTO image_upload (id, category_id, split, filename, content_type, byte_size, sha256, with_mask, requested_by, expires_at)
       VALUES ($1, $2, 'TRAIN', 'a.png', 'image/png', 3, repeat('a', 64), true, $1, ${expiresAt})`,
      [id, category?.id],
    );
    await store.put(objectKeys.upload(id, 'file'), Buffer.from('abc'), 'image/png');
    await store.put(objectKeys.upload(id, 'mask'), Buffer.from('abc'), 'image/png');
  }
  const kept = randomUUID();
  await dataSource.query(
    `INSERT INTO image (id, category_id, split, width, height, channels, format, byte_size, sha256, object_key, mask_object_key, original_filename)
     VALUES ($1, $2, 'TEST', 1, 1, 3, 'png', 3, repeat('b', 64), $3, $4, 'kept.png')`,
    [kept, category?.id, objectKeys.image(kept), objectKeys.mask(kept)],
  );
  await store.put(objectKeys.image(kept), Buffer.from('img'), 'image/png');
  await store.put(objectKeys.mask(kept), Buffer.from('msk'), 'image/png');
  // Left behind by a crash: objects of an image whose row was never committed, of an upload whose row is gone.
  const lost = randomUUID();
  await store.put(objectKeys.image(lost), Buffer.from('img'), 'image/png');
  await store.put(objectKeys.mask(lost), Buffer.from('msk'), 'image/png');
  await store.put(objectKeys.upload(randomUUID(), 'file'), Buffer.from('abc'), 'image/png');
  await store.put('images/not-a-uuid', Buffer.from('?'), 'image/png');
  // Models, inspections and evaluations whose rows are gone (a deleted model's inspections, a crash before an insert).
  const gone = randomUUID();
  const leftovers = [
    objectKeys.model(gone),
    objectKeys.modelUpload(gone),
    objectKeys.inspectionArtifact(gone, 'heatmap'),
    objectKeys.inspectionAnomalyMap(gone),
    objectKeys.inspectionUpload(gone),
    objectKeys.evaluationMap(gone, randomUUID()),
  ];
  for (const key of leftovers) await store.put(key, Buffer.from('x'), 'application/octet-stream');
  // Outside our prefixes: never touched (e.g. a folder waiting to be imported).
  await store.put('incoming/mvtec/bottle/train/good/000.png', Buffer.from('x'), 'image/png');

  const logger = pino({ level: 'silent' });
  const young = new OrphanSweepService(new Database(dataSource), store, logger, { graceSeconds: 3600, lock: null });
  expect(await young.sweep()).toEqual({ expiredUploads: 0, orphanObjects: 0 });

  const sweep = new OrphanSweepService(new Database(dataSource), store, logger, { graceSeconds: 0, lock: null });
  expect(await sweep.sweep()).toEqual({ expiredUploads: 1, orphanObjects: 4 + leftovers.length });
  expect(await keys()).toEqual(
    [
      objectKeys.upload(pending, 'file'),
      objectKeys.upload(pending, 'mask'),
      objectKeys.image(kept),
      objectKeys.mask(kept),
      'incoming/mvtec/bottle/train/good/000.png',
    ].sort(),
  );
  const uploads = await dataSource.query<Array<{ id: string }>>('SELECT id FROM image_upload');
  expect(uploads.map((row) => row.id)).toEqual([pending]);
  expect(await sweep.sweep()).toEqual({ expiredUploads: 0, orphanObjects: 0 });
});
