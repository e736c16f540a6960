import { Role } from '../db/entities/api-key.entity';

export { Role };

/** Who is calling: the API key a request authenticated with. */
export interface Principal {
  apiKeyId: string;
  name: string;
  role: Role;
}

/** Roles are nested: an ADMIN may do all a LABELER may, a LABELER all a VIEWER may. */
const ROLE_RANK: Record<Role, number> = { [Role.VIEWER]: 1, [Role.LABELER]: 2, [Role.ADMIN]: 3 };

export function hasRole(principal: Principal, required: Role): boolean {
  return ROLE_RANK[principal.role] >= ROLE_RANK[required];
}

/** Reads `Bearer <key>` from an Authorization header or graphql-ws connection parameter. */
export function bearerToken(header: unknown): string | null {
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}
