import type { EntityManager } from 'typeorm';

/** The SQL of the api key table(s). */
export class ApiKeyRepository {
  constructor(private readonly manager: EntityManager) {}
}
