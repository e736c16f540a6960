/**
 * Prints the GraphQL schema the server serves to schema.graphql, without a database or object store.
 *
 *   npm run schema:print     writes schema.graphql
 *   npm run schema:check     exits 1, saying where, when schema.graphql differs from what the code builds (CI)
 */
import 'reflect-metadata';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { GraphQLSchema } from 'graphql';
import { apiResolverBindings } from '../src/app/application';
import { DatasetDomain } from '../src/app/dataset-domain';
import { EvaluationDomain } from '../src/app/evaluation-domain';
import { InspectionDomain } from '../src/app/inspection-domain';
import { buildAppSchema } from '../src/graphql/schema';
import { printSchemaContract, SCHEMA_FILE, schemaContractDrift } from '../src/graphql/schema-contract';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * Stands in for a service (or a domain's fields, or the pub/sub): resolvers receive their services
 * by constructor but use them only while executing, which printing never does. Any property is
 * another stand-in; calling one throws, so a constructor that starts using a service fails loudly here.
 */
function unused(name: string): never {
  const fail = (): never => {
    throw new Error(`${name} was used while printing the schema; resolvers may only store their services`);
  };
  const target: object = function unusedService() {};
  return new Proxy(target, {
    get: (_target, property) => (property === 'then' ? undefined : unused(`${name}.${String(property)}`)),
    apply: fail,
    construct: fail,
  }) as never;
}

/** The schema startApplication builds: the same resolver list, each domain's bindings over stand-ins. */
export function buildContractSchema(): Promise<GraphQLSchema> {
  // The domains startApplication passes to apiResolverBindings.
  const domains = [DatasetDomain, InspectionDomain, EvaluationDomain].map((Domain) => ({
    resolverBindings: () => Domain.prototype.resolverBindings.call(unused(Domain.name)),
  }));
  return buildAppSchema(apiResolverBindings(unused('ApiKeyService'), domains), unused('pubSub'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const file = path.join(ROOT, SCHEMA_FILE);
  const printed = printSchemaContract(await buildContractSchema());
  if (!values.check) {
    await writeFile(file, printed);
    process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
    return;
  }
  const committed = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  const drift = schemaContractDrift(committed, printed);
  if (drift) {
    process.stderr.write(`${drift}\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(`${SCHEMA_FILE} is up to date\n`);
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
