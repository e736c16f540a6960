import type { EntityManager } from 'typeorm';

/** The SQL of the evaluation table(s). */
export class EvaluationRepository {
  constructor(private readonly manager: EntityManager) {}
}
