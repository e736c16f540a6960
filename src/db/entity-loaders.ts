import DataLoader from 'dataloader';
import type { DataSource, EntityTarget, ObjectLiteral } from 'typeorm';
import { In } from 'typeorm';

/**
 * Per-request DataLoaders: every `byId(Entity).load(id)` made while resolving one
 * request is batched into a single `WHERE id IN (...)` query (no N+1).
 */
export class EntityLoaders {
  private readonly loaders = new Map<EntityTarget<ObjectLiteral>, DataLoader<string, ObjectLiteral | null>>();

  constructor(private readonly dataSource: DataSource) {}

  byId<T extends { id: string }>(entity: EntityTarget<T>): DataLoader<string, T | null> {
    let loader = this.loaders.get(entity);
    if (!loader) {
      const repository = this.dataSource.getRepository(entity);
      loader = new DataLoader<string, ObjectLiteral | null>(async (ids) => {
        const rows = await repository.findBy({ id: In([...ids]) } as never);
        const byId = new Map(rows.map((row) => [row.id, row]));
        return ids.map((id) => byId.get(id) ?? null);
      });
      this.loaders.set(entity, loader);
    }
    return loader as DataLoader<string, T | null>;
  }
}
