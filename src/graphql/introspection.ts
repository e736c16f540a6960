import type { ApolloServerPlugin } from '@apollo/server';
import { BREAK, GraphQLError, visit, type DocumentNode, type ValidationRule } from 'graphql';
import type { IntrospectionPolicy } from '../config/config';
import { AppError, ErrorCode } from '../errors';
import type { RequestContext } from './context';

/** The introspection meta-fields; `__typename` is not one of them and is always allowed. */
const INTROSPECTION_FIELDS = new Set(['__schema', '__type']);

/**
 * Whether a validated document selects `__schema` or `__type` anywhere, fragments included.
 * Names starting with `__` are reserved by the spec, so in a valid document these are the meta-fields.
 */
export function selectsIntrospection(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Field(node) {
      if (!INTROSPECTION_FIELDS.has(node.name.value)) return undefined;
      found = true;
      return BREAK;
    },
  });
  return found;
}

/** One error per `__schema` / `__type` (graphql-js's NoSchemaIntrospectionCustomRule adds one per nested field). */
const noIntrospection: ValidationRule = (context) => ({
  Field(node) {
    if (INTROSPECTION_FIELDS.has(node.name.value))
      context.reportError(
        new GraphQLError(`Introspection is turned off on this server: "${node.name.value}" may not be queried`, {
          nodes: node,
        }),
      );
  },
});

/**
 * `off`: a validation rule for both transports, so every caller, ADMIN included, gets
 * GRAPHQL_VALIDATION_FAILED (HTTP 400): the server has no introspection, as if the fields did not
 * exist. FORBIDDEN would suggest that another key could unlock it.
 */
export function introspectionRules(policy: IntrospectionPolicy): ValidationRule[] {
  return policy === 'off' ? [noIntrospection] : [];
}

/**
 * `key`: an operation without an API key that selects `__schema` or `__type` gets UNAUTHENTICATED
 * (HTTP 401) before anything executes. Over HTTP only: a websocket has a key from connection_init.
 * A plugin rather than a validation rule, because only the context knows the caller.
 */
export function introspectionPlugin(policy: IntrospectionPolicy): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      if (policy !== 'key') return;
      return {
        async didResolveOperation({ contextValue, document }) {
          if (contextValue.principal || !selectsIntrospection(document)) return;
          throw new AppError(
            ErrorCode.UNAUTHENTICATED,
            contextValue.credentialsRejected
              ? 'The API key is unknown or revoked'
              : 'Introspection needs an API key on this server (Authorization: Bearer <key>)',
            { http: { status: 401, headers: new Map([['www-authenticate', 'Bearer']]) } },
          );
        },
      };
    },
  };
}
