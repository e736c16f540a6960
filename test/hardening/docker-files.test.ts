import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

// js-yaml 4 comes with eslint (a dev dependency); only its `load` is used, so no @types package.
const { load } = createRequire(__filename)('js-yaml') as { load(text: string): unknown };

interface ComposeService {
  image?: string;
  build?: unknown;
  ports?: Array<string | { published?: string | number; host_ip?: string; target?: number }>;
  environment?: Record<string, string> | string[];
}

const dockerDir = path.resolve(__dirname, '..', '..', 'docker');
const composeText = readFileSync(path.join(dockerDir, 'compose.yaml'), 'utf8');
const compose = load(composeText) as { services: Record<string, ComposeService> };
const dockerfile = readFileSync(path.join(dockerDir, 'Dockerfile'), 'utf8');
const SECRETS = ['ADMIN_API_KEY', 'MINIO_ROOT_USER', 'MINIO_ROOT_PASSWORD', 'POSTGRES_PASSWORD'];

function environmentOf(name: string): Record<string, string> {
  const environment = compose.services[name]?.environment;
  if (Array.isArray(environment))
    return Object.fromEntries(environment.map((entry) => [entry.split('=')[0], entry.slice(entry.indexOf('=') + 1)]));
  return environment ?? {};
}

/** `${VAR:?message}` anywhere in the value: compose refuses to start while VAR is unset or empty. */
function requires(value: string | undefined, variable: string): boolean {
  return new RegExp(`\\$\\{${variable}:\\?[^}]+\\}`).test(value ?? '');
}

test('only the service publishes a port on every interface; PostgreSQL publishes none, MinIO only its S3 API on 127.0.0.1', () => {
  const { postgres, minio, service } = compose.services;
  expect(Object.keys(compose.services).sort()).toEqual(['minio', 'postgres', 'service']);
  expect(service?.ports).toEqual(['4000:4000']);
  expect(postgres?.ports).toBeUndefined();
  // Clients put bytes straight into S3 with presigned URLs (S3_PUBLIC_ENDPOINT), from this host only.
  expect(minio?.ports).toEqual(['127.0.0.1:9000:9000']);
  expect(environmentOf('service').S3_PUBLIC_ENDPOINT).toBe('http://localhost:9000');
});

test('every image is pinned to a release, never latest', () => {
  const images = Object.values(compose.services)
    .map((service) => service.image)
    .filter((image): image is string => image !== undefined);
  expect(images).toHaveLength(2);
  for (const image of images) {
    const tag = /:([^/:]+)$/.exec(image)?.[1];
    // A release (MinIO's RELEASE.<date>, or major.minor), not a tag that moves like `16` or `latest`.
    expect({ image, tag }).toEqual({
      image,
      tag: expect.stringMatching(/^(RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z|\d+\.\d+)/),
    });
  }
  expect(composeText).not.toMatch(/:latest\b/);
});

test('the admin key and the MinIO and PostgreSQL credentials come from the environment, with no defaults', () => {
  const postgres = environmentOf('postgres');
  const minio = environmentOf('minio');
  const service = environmentOf('service');
  expect(requires(service.ADMIN_API_KEY, 'ADMIN_API_KEY')).toBe(true);
  expect(requires(minio.MINIO_ROOT_USER, 'MINIO_ROOT_USER')).toBe(true);
  expect(requires(minio.MINIO_ROOT_PASSWORD, 'MINIO_ROOT_PASSWORD')).toBe(true);
  expect(requires(service.AWS_ACCESS_KEY_ID, 'MINIO_ROOT_USER')).toBe(true);
  expect(requires(service.AWS_SECRET_ACCESS_KEY, 'MINIO_ROOT_PASSWORD')).toBe(true);
  expect(requires(postgres.POSTGRES_PASSWORD, 'POSTGRES_PASSWORD')).toBe(true);
  expect(requires(service.DATABASE_URL, 'POSTGRES_PASSWORD')).toBe(true);
  // No `${VAR:-default}` or `${VAR-default}` for a secret anywhere in the file.
  for (const variable of SECRETS) expect(composeText).not.toMatch(new RegExp(`\\$\\{${variable}:?-`));
});

test('docker/.env.example lists every variable compose requires, each left empty', () => {
  const required = new Set([...composeText.matchAll(/\$\{(\w+):\?/g)].map((match) => match[1]));
  const example = readFileSync(path.join(dockerDir, '.env.example'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));
  expect([...required].sort()).toEqual([...SECRETS].sort());
  expect(example.sort()).toEqual([...required].sort().map((variable) => `${variable}=`));
});

test('the service image is built on a Node LTS line of at least 22, and its healthcheck asks /healthz', () => {
  const bases = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1] as string);
  expect(bases.length).toBeGreaterThan(0);
  for (const base of bases) {
    const major = Number(/^node:(\d+)-/.exec(base)?.[1]);
    // Even majors become LTS; 20 reached its end of life in April 2026.
    expect({ base, lts: major >= 22 && major % 2 === 0 }).toEqual({ base, lts: true });
  }
  expect(dockerfile).toMatch(/^HEALTHCHECK .*\/healthz/m);
});

test('the build stage copies everything npm run build reads: the console and the schema its typed operations come from', () => {
  for (const source of ['src', 'migrations', 'scripts', 'bench', 'console'])
    expect(dockerfile).toMatch(new RegExp(`^COPY ${source} \\./${source}$`, 'm'));
  expect(dockerfile).toMatch(/^COPY .*\bschema\.graphql\b.* \.\/$/m);
  expect(environmentOf('minio').MINIO_API_CORS_ALLOW_ORIGIN).toBe('http://localhost:4000');
});
