import type { Principal } from '../auth/principal';
import { unauthenticated } from '../errors';
import type { RequestContext } from '../graphql/context';

/** The caller of a field that @Authorized already let through. */
export function callerOf(context: RequestContext): Principal {
  if (!context.principal) throw unauthenticated();
  return context.principal;
}
