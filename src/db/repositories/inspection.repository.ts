import type { EntityManager, Repository } from 'typeorm';
import { InspectionEntity } from '../entities/inspection.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../pagination';

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
