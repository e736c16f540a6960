import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { objectKeys } from '../../src/storage/object-keys';
import { ObjectStore, type ObjectStoreOptions } from '../../src/storage/object-store';
import { testS3Settings, uniqueName } from '../support/resources';
import { freePort } from '../support/test-server';

/** moto's S3 server, when python3 has moto installed; otherwise null. */
async function startMoto(): Promise<{ endpoint: string; process: ChildProcess } | null> {
  const port = await freePort();
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('exit', () => resolve(false));
    const deadline = Date.now() + 15_000;
    const poll = (): void => {
      fetch(endpoint).then(
        () => resolve(true),
        () => (Date.now() > deadline ? resolve(false) : setTimeout(poll, 200)),
      );
    };
    poll();
  });
  if (!spawned) {
    child.kill();
    return null;
  }
  return { endpoint, process: child };
}

const moto: { current: Awaited<ReturnType<typeof startMoto>> } = { current: null };

beforeAll(async () => {
  moto.current = await startMoto();
  if (!moto.current)
    console.warn('python3 -m moto.server is not available here: the storage tests run against s3rver only');
});

afterAll(() => {
  moto.current?.process.kill();
});

const servers: Array<[string, () => ObjectStoreOptions | null]> = [
  ['s3rver', () => testS3Settings()],
  [
    'moto',
    () =>
      moto.current
        ? {
            ...testS3Settings(),
            endpoint: moto.current.endpoint,
            credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
          }
        : null,
  ],
];

describe.each(servers)('ObjectStore against %s', (_name, settings) => {
  let store: ObjectStore | null = null;

  beforeAll(async () => {
    const options = settings();
    if (!options) return;
    store = new ObjectStore({ ...options, bucket: uniqueName('store-') });
    await store.ensureBucket();
    await store.ensureBucket(); // idempotent
  });

  afterAll(() => store?.destroy());

  test('put, head, get, list and delete', async () => {
    if (!store) return;
    const body = Buffer.from('hello inspection');
    await store.put('a/one.txt', body, 'text/plain');
    await store.put('a/two.txt', Buffer.from('two'), 'text/plain');
    await store.put('b/three.txt', Buffer.from('three'), 'text/plain');
    expect(await store.head('a/one.txt')).toMatchObject({
      key: 'a/one.txt',
      size: body.length,
      contentType: 'text/plain',
    });
    expect(await store.head('a/missing.txt')).toBeNull();
    expect((await store.get('a/one.txt')).equals(body)).toBe(true);
    expect((await store.getRange('a/one.txt', 5)).toString()).toBe('hello');
    const listed: string[] = [];
    for await (const object of store.list('a/')) listed.push(object.key);
    expect(listed.sort()).toEqual(['a/one.txt', 'a/two.txt']);
    await store.delete(['a/one.txt', 'a/two.txt']);
    expect(await store.head('a/one.txt')).toBeNull();
    expect(await store.head('b/three.txt')).not.toBeNull();
  });

  test('presigned PUT then presigned GET round-trips the bytes with plain fetch', async () => {
    if (!store) return;
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, index) => index % 251));
    const key = objectKeys.upload('0b6c39b0-7a0e-4c63-9d7a-0f3c6f5e2a11');
    const putUrl = await store.presignPut(key, {
      contentType: 'application/octet-stream',
      contentLength: bytes.length,
    });
    const put = await fetch(putUrl, {
      method: 'PUT',
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.status).toBe(200);
    const get = await fetch(await store.presignGet(key));
    expect(get.status).toBe(200);
    const fetched = Buffer.from(await get.arrayBuffer());
    expect(createHash('sha256').update(fetched).digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  test('presignGet signs the URL the SDK signs, byte for byte, and the server serves it', async () => {
    if (!store) return;
    const signingDate = new Date('2026-11-28T12:34:56Z');
    const keys = [
      'inspections/0b6c39b0-7a0e-4c63-9d7a-0f3c6f5e2a11/heatmap.png',
      "a b/c+d!(e)*f'g~h.png",
      'ünïcode/ключ.bin',
    ];
    for (const key of keys) {
      for (const options of [{}, { contentType: 'image/png', expiresInSeconds: 120 }]) {
        expect(await store.presignGet(key, { ...options, signingDate })).toBe(
          await store.presignGetWithSdk(key, { ...options, signingDate }),
        );
      }
    }
    const key = keys[1] as string;
    await store.put(key, Buffer.from('special'), 'text/plain');
    const url = await store.presignGet(key, { contentType: 'text/plain' });
    const fetched = await fetch(url);
    expect(fetched.status).toBe(200);
    expect(await fetched.text()).toBe('special');
  });
});

describe('object keys', () => {
  test('are built only from ids the service made', () => {
    expect(objectKeys.upload('0b6c39b0-7a0e-4c63-9d7a-0f3c6f5e2a11', 'mask')).toBe(
      'uploads/0b6c39b0-7a0e-4c63-9d7a-0f3c6f5e2a11/mask',
    );
    expect(() => objectKeys.upload('../../etc/passwd')).toThrow(/not a lowercase UUID/);
    expect(() => objectKeys.upload('0B6C39B0-7A0E-4C63-9D7A-0F3C6F5E2A11')).toThrow(/not a lowercase UUID/);
  });
});
