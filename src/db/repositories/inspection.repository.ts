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

  /** The exact map written with the row, while it has not moved to S3 yet; null after. */
  async pendingMap(id: string): Promise<Buffer | null> {
    const [row] = await queryRows<{ pending_map: Buffer | null }>(
      this.manager,
      'SELECT pending_map FROM inspection WHERE id = $1',
      [id],
    );
    return row?.pending_map ?? null;
  }

  /** The maps still in rows written before `before` (a move that never happened), oldest first. */
  async pendingMapsBefore(before: Date, limit: number): Promise<Array<{ inspectionId: string; object: Buffer }>> {
    const rows = await queryRows<{ id: string; pending_map: Buffer }>(
      this.manager,
      'SELECT id, pending_map FROM inspection WHERE pending_map IS NOT NULL AND created_at < $1 ORDER BY created_at LIMIT $2',
      [before, limit],
    );
    return rows.map((row) => ({ inspectionId: row.id, object: row.pending_map }));
  }

  /** Points rows at their map objects and clears the maps they held. */
  async linkAnomalyMaps(maps: ReadonlyArray<{ inspectionId: string; objectKey: string }>): Promise<void> {
    await queryRows(
      this.manager,
      `UPDATE inspection SET map_object_key = stored.key, pending_map = NULL
         FROM unnest($1::uuid[], $2::text[]) AS stored(id, key)
        WHERE inspection.id = stored.id`,
      [maps.map((map) => map.inspectionId), maps.map((map) => map.objectKey)],
    );
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
