import type { Role } from '../gql/graphql';

const RANK: Record<Role, number> = { VIEWER: 0, LABELER: 1, ADMIN: 2 };

/** Whether a key of `role` may do what needs `required` (ADMIN ⊃ LABELER ⊃ VIEWER, as the service checks). */
export function roleAllows(role: Role, required: Role): boolean {
  return RANK[role] >= RANK[required];
}
