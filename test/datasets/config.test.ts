import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';

test('dataset settings have safe defaults: no local imports, 50 MiB uploads, workers in the server', () => {
  const config = loadConfig({});
  expect(config.datasets).toEqual({
    importRoots: [],
    uploadMaxBytes: 50 * 1024 * 1024,
    uploadUrlExpirySeconds: 900,
    imageMaxPixels: 50_000_000,
    orphanSweepIntervalSeconds: 3600,
  });
  expect(config.jobWorkersInProcess).toBe(true);
});

test('IMPORT_ROOTS is a comma-separated list of absolute directories', () => {
  expect(loadConfig({ IMPORT_ROOTS: ' /data/mvtec , /mnt/share/ ' }).datasets.importRoots).toEqual([
    path.resolve('/data/mvtec'),
    path.resolve('/mnt/share'),
  ]);
  expect(() => loadConfig({ IMPORT_ROOTS: '/data,relative/dir' })).toThrow(ConfigError);
  expect(() => loadConfig({ IMPORT_ROOTS: '/data,relative/dir' })).toThrow(
    /IMPORT_ROOTS: must be a comma-separated list of absolute directories/,
  );
  expect(loadConfig({ JOB_WORKERS_IN_PROCESS: 'false', ORPHAN_SWEEP_INTERVAL_SECONDS: '0' })).toMatchObject({
    jobWorkersInProcess: false,
    datasets: { orphanSweepIntervalSeconds: 0 },
  });
});
