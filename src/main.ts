import 'reflect-metadata';
import { startApplication } from './app/application';
import { ConfigError, loadConfig } from './config/config';
import { startInfrastructure } from './app/infrastructure';
import { createLogger } from './observability/logger';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const infrastructure = await startInfrastructure(config, logger);
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

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    application
      .stop()
      .then(() => infrastructure.stop())
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
