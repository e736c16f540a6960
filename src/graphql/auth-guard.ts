import type { AuthCheckerInterface, MiddlewareInterface, NextFn, ResolverData } from 'type-graphql';
import { hasRole, type Role } from '../auth/principal';
import { forbidden, unauthenticated } from '../errors';
import type { RequestContext } from './context';

/** Root fields anyone may call without a key. Everything else needs one. */
const PUBLIC_ROOT_FIELDS = new Set(['Query.health']);
const ROOT_TYPES = new Set(['Query', 'Mutation', 'Subscription']);

function requirePrincipal(context: RequestContext) {
  if (!context.principal) {
    throw unauthenticated(context.credentialsRejected ? 'The API key is unknown or revoked' : undefined);
  }
  return context.principal;
}

/**
 * Default deny: a global middleware that refuses every root field but the public ones
 * to an unauthenticated caller, so a resolver that forgets @Authorized is still closed.
 */
export class AuthenticationGuard implements MiddlewareInterface<RequestContext> {
  async use({ context, info }: ResolverData<RequestContext>, next: NextFn): Promise<unknown> {
    const parent = info.parentType.name;
    if (ROOT_TYPES.has(parent) && !PUBLIC_ROOT_FIELDS.has(`${parent}.${info.fieldName}`)) {
      requirePrincipal(context);
    }
    return next();
  }
}

/** `@Authorized(Role.LABELER)`: the caller's role must be LABELER or above. */
export class RoleAuthChecker implements AuthCheckerInterface<RequestContext, Role> {
  check({ context }: ResolverData<RequestContext>, roles: Role[]): boolean {
    const principal = requirePrincipal(context);
    if (roles.length > 0 && !roles.some((role) => hasRole(principal, role))) throw forbidden();
    return true;
  }
}
