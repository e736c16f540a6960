import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';

describe('loadConfig', () => {
  test('defaults: embedded database and object store, port 4000, ./.data', () => {
    const config = loadConfig({});
    expect(config.port).toBe(4000);
    expect(config.dataDir).toBe(path.resolve('./.data'));
    expect(config.database.url).toBeUndefined();
    expect(config.s3.embedded).toBe(true);
    expect(config.graphql.exposeStackTraces).toBe(false);
  });

  test('an S3 endpoint or AWS credentials mean no embedded S3', () => {
    expect(
      loadConfig({ S3_ENDPOINT: 'http://minio:9000', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' }).s3.embedded,
    ).toBe(false);
    expect(loadConfig({ AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' }).s3).toMatchObject({
      embedded: false,
      endpoint: undefined,
    });
  });

  test('reports every bad value with its variable', () => {
    let thrown: unknown;
    try {
      loadConfig({ PORT: '70000', DATABASE_URL: 'not a url', S3_FORCE_PATH_STYLE: 'maybe' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const problems = (thrown as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^PORT: .*\(got "70000"\)$/m);
    expect(problems).toMatch(/^DATABASE_URL: /m);
    expect(problems).toMatch(/^S3_FORCE_PATH_STYLE: /m);
  });

  test('credentials come in pairs', () => {
    expect(() => loadConfig({ AWS_ACCESS_KEY_ID: 'only-id' })).toThrow(
      /AWS_SECRET_ACCESS_KEY: is required when AWS_ACCESS_KEY_ID is set/,
    );
  });

  test('introspection: open in embedded mode, for key holders with a DATABASE_URL, or as set', () => {
    expect(loadConfig({}).graphql.introspection).toBe('on');
    expect(loadConfig({ DATABASE_URL: 'postgres://db/inspection' }).graphql.introspection).toBe('key');
    expect(
      loadConfig({ DATABASE_URL: 'postgres://db/inspection', GRAPHQL_INTROSPECTION: 'on' }).graphql.introspection,
    ).toBe('on');
    expect(loadConfig({ GRAPHQL_INTROSPECTION: 'off' }).graphql.introspection).toBe('off');
    expect(() => loadConfig({ GRAPHQL_INTROSPECTION: 'true' })).toThrow(
      /^ {2}- GRAPHQL_INTROSPECTION: .*\(got "true"\)$/m,
    );
  });

  test('stack traces only in development', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).graphql.exposeStackTraces).toBe(true);
  });
});
