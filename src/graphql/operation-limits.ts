import depthLimit from 'graphql-depth-limit';
import { getNamedType, GraphQLError, type DocumentNode, type GraphQLSchema, type ValidationRule } from 'graphql';
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

export function depthLimitRule(limits: OperationLimits): ValidationRule {
  return depthLimit(limits.maxDepth);
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
