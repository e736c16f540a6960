import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  getNamedType,
  GraphQLError,
  parse,
  type DocumentNode,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import {
  fieldExtensionsEstimator,
  getComplexity,
  simpleEstimator,
  type ComplexityEstimator,
} from 'graphql-query-complexity';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../db/pagination';

export interface OperationLimits {
  maxDepth: number;
  maxComplexity: number;
  maxAliases: number;
  maxDirectives: number;
  maxTokens: number;
}

/** A refused operation is the client's mistake: HTTP 400 (Apollo reads extensions.http and strips it). */
const REFUSED = { http: { status: 400 } };

/**
 * A connection field costs its page size times what each node costs. A page size outside
 * [1, MAX_PAGE_SIZE] refuses the whole operation before anything executes: the resolver would
 * refuse it anyway, and a negative one must not lower the estimate of the others.
 */
const connectionEstimator: ComplexityEstimator = ({ field, args, childComplexity }) => {
  if (!getNamedType(field.type).name.endsWith('Connection')) return undefined;
  const first: unknown = args.first ?? DEFAULT_PAGE_SIZE;
  if (typeof first !== 'number' || !Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw new GraphQLError(`"first" must be between 1 and ${MAX_PAGE_SIZE}`, {
      extensions: { code: 'BAD_USER_INPUT', argument: 'first' },
    });
  }
  return 1 + first * Math.max(childComplexity, 1);
};

/**
 * Depth, alias and directive limits as validation rules (graphql-armor's), for Apollo and for the
 * websocket path alike. A refusal is reported as a validation error (GRAPHQL_VALIDATION_FAILED,
 * HTTP 400) rather than thrown, so graphql-js collects it like any other; its `limit` extension
 * names which limit it was. Armor's cost limit is off (checkComplexity is ours: it knows page
 * sizes) and so is its token limit (graphql-js's own `maxTokens`, parseOptions below, stops the
 * parser itself; armor's Apollo plugin would parse the document a second time).
 */
export function limitRules(limits: OperationLimits): ValidationRule[] {
  const reportAs =
    (limit: string) =>
    (context: ValidationContext | null, error: GraphQLError): void =>
      context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { extensions: { limit } }));
  const armor = new ApolloArmor({
    costLimit: { enabled: false },
    maxTokens: { enabled: false },
    // The schema is published (schema.graphql), so hiding "did you mean" suggestions would protect nothing.
    blockFieldSuggestion: { enabled: false },
    maxDepth: { n: limits.maxDepth, propagateOnRejection: false, onReject: [reportAs('depth')] },
    maxAliases: { n: limits.maxAliases, propagateOnRejection: false, onReject: [reportAs('aliases')] },
    maxDirectives: { n: limits.maxDirectives, propagateOnRejection: false, onReject: [reportAs('directives')] },
  });
  return armor.protect().validationRules;
}

/** graphql-js stops parsing past this many tokens (GRAPHQL_PARSE_FAILED). */
export function parseOptions(limits: OperationLimits): ParseOptions {
  return { maxTokens: limits.maxTokens };
}

/** Parses a document under the token limit (the websocket path; Apollo gets parseOptions). */
export function parseOperation(source: string, limits: OperationLimits): DocumentNode {
  return parse(source, parseOptions(limits));
}

/** Refuses an operation whose estimated cost is above the limit (code QUERY_TOO_COMPLEX). */
export function checkComplexity(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName: string | undefined,
  limits: OperationLimits,
): void {
  let complexity: number;
  try {
    complexity = getComplexity({
      schema,
      query: document,
      variables,
      operationName,
      estimators: [fieldExtensionsEstimator(), connectionEstimator, simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch (error) {
    // getComplexity coerces the variables first; a value that does not fit its type is
    // the client's mistake, reported as graphql-js would during execution.
    if (error instanceof GraphQLError)
      throw new GraphQLError(error.message, {
        extensions: {
          code: 'BAD_USER_INPUT',
          ...(error.extensions.argument ? { argument: error.extensions.argument } : {}),
          ...REFUSED,
        },
      });
    throw error;
  }
  if (complexity > limits.maxComplexity) {
    throw new GraphQLError(
      `Operation is too complex: ${complexity} > ${limits.maxComplexity}. Ask for fewer items or fields.`,
      {
        extensions: { code: 'QUERY_TOO_COMPLEX', complexity, maxComplexity: limits.maxComplexity, ...REFUSED },
      },
    );
  }
}
