// `npm run worker`: a process that only runs background jobs (imports, evaluations) and
// the periodic sweeps, next to API servers started with JOB_WORKERS_IN_PROCESS=false.
import 'reflect-metadata';
import { Cleanups, runProcess, startBackgroundWork, startCore } from './app/bootstrap';
import { startInfrastructure } from './app/infrastructure';

runProcess(
  async (config, logger) => {
    if (!config.database.url || config.s3.embedded) {
      // The embedded PostgreSQL and S3 belong to the server process that started them.
      process.stderr.write(
        'A worker needs the shared database and object store: set DATABASE_URL and S3_ENDPOINT (or AWS credentials).\n',
      );
      process.exit(1);
    }
    const infrastructure = await startInfrastructure(config, logger);
    const cleanups = new Cleanups(logger);
    cleanups.add('infrastructure', () => infrastructure.stop());
    try {
      // Only the inspection domain's engine and model loader are used here: models load on demand, none at start.
      await startBackgroundWork(await startCore(config, infrastructure, logger, cleanups));
    } catch (error) {
      await cleanups.runAll();
      throw error;
    }
    process.stdout.write('Worker: running job workers\n');
    return { stop: () => cleanups.runAll() };
  },
  { processName: 'worker' },
);
