// `npm start`: the API server (GraphQL over HTTP and websockets), with job workers unless
// JOB_WORKERS_IN_PROCESS=false, on the configured or embedded PostgreSQL and S3.
import 'reflect-metadata';
import { startApplication } from './app/application';
import { runProcess } from './app/bootstrap';
import { startInfrastructure } from './app/infrastructure';
import { EmbeddedServerError } from './embedded/errors';

runProcess(async (config, logger) => {
  const infrastructure = await startInfrastructure(config, logger).catch((error: unknown) => {
    // An embedded server that cannot start says why in one line; a stack would only bury it.
    if (error instanceof EmbeddedServerError) {
      process.stderr.write(`Failed to start: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  });
  let application;
  try {
    application = await startApplication(config, infrastructure, logger);
  } catch (error) {
    await infrastructure.stop();
    throw error;
  }
  // The lines people and scripts look for (everything else is JSON logs), in one write so
  // that a reader that waits for the first line has the key too.
  const adminKeyLine = application.initialAdminKey ? `Admin API key: ${application.initialAdminKey}\n` : '';
  process.stdout.write(`GraphQL: ${application.url}\n${adminKeyLine}`);
  const started = application;
  return { stop: () => started.stop().then(() => infrastructure.stop()) };
});
