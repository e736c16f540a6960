import type { EntityManager, Repository } from 'typeorm';
import { InspectionEntity } from '../entities/inspection.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../pagination';
import { queryRows } from '../sql';

/** A new inspection row; its objects are already stored under the keys it names. */
export type NewInspection = Omit<InspectionEntity, 'createdAt' | 'model' | 'category' | 'image' | 'anomalyMap'>;

/** Filters of the inspection list, already checked (ids are lowercase UUIDs). */
export interface InspectionListFilter {
  categoryId?: string;
  modelId?: string;
  isAnomalous?: boolean;
  minScore?: number;
  since?: Date;
  until?: Date;
}

/** The SQL of the inspection table. */
export class InspectionRepository {
  private readonly repository: Repository<InspectionEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(InspectionEntity);
  }

  findById(id: string): Promise<InspectionEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /** Inserts the rows in one statement; the entities returned have their createdAt (RETURNING). */
  async insertMany(inspections: readonly NewInspection[]): Promise<InspectionEntity[]> {
    const rows = inspections.map((inspection) => this.repository.create(inspection));
    await this.repository.insert(rows);
    return rows;
  }

  /**
   * Points each inspection at its stored anomaly map object, in one statement; returns the ids
   * of the inspections that were still there.
   */
  async linkAnomalyMaps(maps: ReadonlyArray<{ inspectionId: string; objectKey: string }>): Promise<Set<string>> {
    const linked = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE inspection SET map_object_key = stored.key
         FROM unnest($1::uuid[], $2::text[]) AS stored(id, key)
        WHERE inspection.id = stored.id
       RETURNING inspection.id`,
      [maps.map((map) => map.inspectionId), maps.map((map) => map.objectKey)],
    );
    return new Set(linked.map((row) => row.id));
  }

  /** Inspections, newest first. */
  page(filter: InspectionListFilter, page: PageRequest): Promise<Page<InspectionEntity>> {
    const query = this.repository.createQueryBuilder('inspection').where('TRUE');
    if (filter.categoryId !== undefined)
      query.andWhere('inspection.categoryId = :categoryId', { categoryId: filter.categoryId });
    if (filter.modelId !== undefined) query.andWhere('inspection.modelId = :modelId', { modelId: filter.modelId });
    if (filter.isAnomalous !== undefined)
      query.andWhere('inspection.isAnomalous = :isAnomalous', { isAnomalous: filter.isAnomalous });
    if (filter.minScore !== undefined) query.andWhere('inspection.score >= :minScore', { minScore: filter.minScore });
    if (filter.since !== undefined) query.andWhere('inspection.createdAt >= :since', { since: filter.since });
    if (filter.until !== undefined) query.andWhere('inspection.createdAt < :until', { until: filter.until });
    return paginate(query, newestFirst<InspectionEntity>('inspection'), page);
  }
}
