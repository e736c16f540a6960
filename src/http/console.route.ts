import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type Response, type Router } from 'express';

/** Where `npm run build` puts the console and GraphiQL (console/vite.config.ts). */
export const CONSOLE_BUILD_DIR = path.resolve(__dirname, '..', '..', 'console');

/**
 * Pages only: scripts from this origin, no inline script, no framing. Images and presigned PUTs go
 * to the object store, whose origin the page cannot know in advance (S3_PUBLIC_ENDPOINT, AWS).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob: http: https:",
  "connect-src 'self' ws: wss: http: https:",
  "font-src 'self' data:",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

function sendPage(response: Response, file: string): void {
  response.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
  response.setHeader('x-content-type-options', 'nosniff');
  response.setHeader('referrer-policy', 'no-referrer');
  // The page names its hashed assets: always revalidate it, so a new build is picked up at once.
  response.setHeader('cache-control', 'no-cache');
  response.sendFile(file);
}

/**
 * The web console at `/` and GraphiQL at `/graphiql`, served from the built files. Neither needs a
 * key to load: both ask for one and use only the public GraphQL API with it.
 */
export function consolePagesRouter(options: { console: boolean; graphiql: boolean; directory?: string }): Router {
  const directory = options.directory ?? CONSOLE_BUILD_DIR;
  const router = express.Router();
  if (!options.console && !options.graphiql) return router;
  const page = (name: 'index.html' | 'graphiql.html') => path.join(directory, name);
  const notBuilt = (response: Response): void => {
    response.status(404).type('text/plain').send('The console is not built: run `npm run build`.\n');
  };

  if (options.console)
    router.get('/', (_request, response) =>
      existsSync(page('index.html')) ? sendPage(response, page('index.html')) : notBuilt(response),
    );
  if (options.graphiql)
    router.get('/graphiql', (_request, response) =>
      existsSync(page('graphiql.html')) ? sendPage(response, page('graphiql.html')) : notBuilt(response),
    );
  // Content-hashed file names: a year of caching is safe.
  router.use(
    '/assets',
    express.static(path.join(directory, 'assets'), {
      immutable: true,
      maxAge: '365d',
      index: false,
      fallthrough: false,
    }),
  );
  return router;
}
