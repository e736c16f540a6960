import type { EntityManager, Repository } from 'typeorm';
import type { EvaluationMetrics } from '../../metrics/evaluation-metrics';
import { EvaluationImageResultEntity } from '../entities/evaluation-image-result.entity';
import { EvaluationEntity, type EvaluationStatus } from '../entities/evaluation.entity';
import { newestFirst, paginate, type KeysetOrder, type Page, type PageRequest } from '../pagination';
import { queryRows } from '../sql';

export interface NewEvaluation {
  id: string;
  modelId: string;
  snapshotId: string;
  auproLimit: number;
  imageScoreRule: string;
  requestedBy: string | null;
  /** An accuracy guard's evaluation: the reference evaluation; its model must be VALIDATING, not READY. */
  accuracyGuardOf?: string | null;
}

/** Filters of the evaluation list, already checked (ids are lowercase UUIDs). */
export interface EvaluationListFilter {
  modelId?: string;
  categoryId?: string;
}

/** One TEST image's result: its score and where its map is stored. */
export interface ImageResult {
  imageId: string;
  score: number;
  mapObjectKey: string;
}

/** Filters of an evaluation's per-image results, already checked. */
export interface ImageResultFilter {
  defectType?: string;
  /** Ground truth: true, images without a defect type; false, the defective ones. */
  good?: boolean;
  /**
   * With `threshold`: true, results whose verdict (score >= threshold) differs from the ground
   * truth; false, those where it agrees.
   */
  misclassified?: { value: boolean; threshold: number };
}

/** What is needed to draw an evaluated image's heatmap and overlay. */
export interface ImageResultForDrawing {
  mapObjectKey: string;
  modelId: string;
  /** The evaluation's image F1-max threshold; null while it has none. */
  threshold: number | null;
  imageObjectKey: string;
  width: number;
  height: number;
}

/** The SQL of the evaluation and evaluation_image_result tables. */
export class EvaluationRepository {
  private readonly repository: Repository<EvaluationEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(EvaluationEntity);
  }

  findById(id: string): Promise<EvaluationEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /** A row known to exist (read back after a change). */
  get(id: string): Promise<EvaluationEntity> {
    return this.repository.findOneByOrFail({ id });
  }

  async statusOf(id: string): Promise<EvaluationStatus | null> {
    const rows = await this.manager.query<Array<{ status: EvaluationStatus }>>(
      'SELECT status FROM evaluation WHERE id = $1',
      [id],
    );
    return rows[0]?.status ?? null;
  }

  /** Evaluations, newest first. */
  page(filter: EvaluationListFilter, page: PageRequest): Promise<Page<EvaluationEntity>> {
    const query = this.repository.createQueryBuilder('evaluation');
    if (filter.modelId !== undefined) query.andWhere('evaluation.modelId = :modelId', { modelId: filter.modelId });
    if (filter.categoryId !== undefined)
      query.andWhere('evaluation.categoryId = :categoryId', { categoryId: filter.categoryId });
    return paginate(query, newestFirst<EvaluationEntity>('evaluation'), page);
  }

  /**
   * Inserts a QUEUED evaluation of a READY model on a snapshot, with the snapshot's TEST image
   * count as its total; null if the model is not READY or either is gone. An accuracy guard's
   * evaluation (`accuracyGuardOf`) is of a VALIDATING model instead. Share-locks the model and
   * the snapshot: a deletion running now either waits for this row or makes it fail.
   */
  async insertQueued(evaluation: NewEvaluation): Promise<{ id: string; total: number } | null> {
    const created = await queryRows<{ id: string; total: number }>(
      this.manager,
      `INSERT INTO evaluation (id, model_id, category_id, snapshot_id, total, aupro_limit, image_score_rule, requested_by, accuracy_guard_of)
       SELECT $1, model.id, model.category_id, snapshot.id,
              (SELECT count(*) FROM snapshot_image member JOIN image ON image.id = member.image_id
                WHERE member.snapshot_id = snapshot.id AND image.split = 'TEST'),
              $4, $5, $6, $7
         FROM model_version model, snapshot
        WHERE model.id = $2 AND snapshot.id = $3
          AND model.status = (CASE WHEN $7::uuid IS NULL THEN 'READY' ELSE 'VALIDATING' END)::model_status
          FOR SHARE OF model, snapshot
       RETURNING id, total`,
      [
        evaluation.id,
        evaluation.modelId,
        evaluation.snapshotId,
        evaluation.auproLimit,
        evaluation.imageScoreRule,
        evaluation.requestedBy,
        evaluation.accuracyGuardOf ?? null,
      ],
    );
    const row = created[0];
    return row ? { id: row.id, total: Number(row.total) } : null;
  }

  /** QUEUED or RUNNING → CANCELLED; false if it was in neither state. */
  async cancel(id: string): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE evaluation SET status = 'CANCELLED', finished_at = now(), updated_at = now()
        WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  async listRunningIds(): Promise<string[]> {
    const rows = await this.manager.query<Array<{ id: string }>>(`SELECT id FROM evaluation WHERE status = 'RUNNING'`);
    return rows.map((row) => row.id);
  }

  /** QUEUED or RUNNING → RUNNING, one attempt more; false if it is in neither state (cancelled, finished, deleted). */
  async markRunning(id: string): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE evaluation
          SET status = 'RUNNING', attempts = attempts + 1, started_at = coalesce(started_at, now()), error = NULL, updated_at = now()
        WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  /** RUNNING → QUEUED; false if it was not RUNNING. */
  async requeueIfRunning(id: string): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE evaluation SET status = 'QUEUED', updated_at = now() WHERE id = $1 AND status = 'RUNNING' RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  /** RUNNING → FAILED with the message; false if it was not RUNNING. */
  async failIfRunning(id: string, message: string): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE evaluation SET status = 'FAILED', error = $2, finished_at = now(), updated_at = now()
        WHERE id = $1 AND status = 'RUNNING' RETURNING id`,
      [id, message],
    );
    return rows.length > 0;
  }

  /**
   * The evaluation an INT8 version of the category is compared with: a SUCCEEDED evaluation of
   * a READY version without `quantization` metadata (fp32) whose snapshot still exists, the
   * category's active version's newest one first, else the newest of any such version.
   */
  findAccuracyReference(categoryId: string): Promise<EvaluationEntity | null> {
    return this.repository
      .createQueryBuilder('evaluation')
      .innerJoin('evaluation.model', 'model')
      .where('evaluation.categoryId = :categoryId', { categoryId })
      .andWhere(`evaluation.status = 'SUCCEEDED' AND evaluation.snapshotId IS NOT NULL`)
      .andWhere(`model.status = 'READY' AND (model.metadata ->> 'quantization') IS NULL`)
      .orderBy('model.isActive', 'DESC')
      .addOrderBy('evaluation.createdAt', 'DESC')
      .addOrderBy('evaluation.id', 'DESC')
      .getOne();
  }

  /**
   * RUNNING → SUCCEEDED with the metrics, computed on maps of `width` × `height`; false if it
   * was no longer RUNNING.
   */
  async succeedIfRunning(id: string, metrics: EvaluationMetrics, width: number, height: number): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE evaluation SET status = 'SUCCEEDED', finished_at = now(), updated_at = now(), error = NULL,
              map_width = $2, map_height = $3, good_image_count = $4, defective_image_count = $5,
              image_auroc = $6, pixel_auroc = $7, aupro = $8, image_f1_max = $9, image_f1_threshold = $10,
              pixel_f1_max = $11, pixel_f1_threshold = $12, per_defect = $13, roc_curve = $14, pro_curve = $15
        WHERE id = $1 AND status = 'RUNNING' RETURNING id`,
      [
        id,
        width,
        height,
        metrics.goodImageCount,
        metrics.defectiveImageCount,
        metrics.imageAuroc,
        metrics.pixelAuroc,
        metrics.aupro,
        metrics.imageF1Max,
        metrics.imageF1Threshold,
        metrics.pixelF1Max,
        metrics.pixelF1Threshold,
        JSON.stringify(metrics.perDefect),
        JSON.stringify(metrics.rocCurve),
        JSON.stringify(metrics.proCurve),
      ],
    );
    return rows.length > 0;
  }

  // --- evaluation_image_result ---------------------------------------------------------------

  /** The images that already have a result (a resumed run skips them). */
  async listResultImageIds(evaluationId: string): Promise<string[]> {
    const sql = 'SELECT image_id FROM evaluation_image_result WHERE evaluation_id = $1';
    const rows = await this.manager.query<Array<{ image_id: string }>>(sql, [evaluationId]);
    return rows.map((row) => row.image_id);
  }

  /** Each image's stored map object, by image id. */
  async mapKeysByImage(evaluationId: string): Promise<Map<string, string>> {
    const rows = await this.manager.query<Array<{ image_id: string; map_object_key: string }>>(
      'SELECT image_id, map_object_key FROM evaluation_image_result WHERE evaluation_id = $1',
      [evaluationId],
    );
    return new Map(rows.map((row) => [row.image_id, row.map_object_key]));
  }

  /** One evaluation's per-image results by score (ties by image id), filtered by their images' ground truth. */
  imageResultPage(
    evaluationId: string,
    filter: ImageResultFilter,
    direction: 'ASC' | 'DESC',
    page: PageRequest,
  ): Promise<Page<EvaluationImageResultEntity>> {
    const query = this.manager
      .getRepository(EvaluationImageResultEntity)
      .createQueryBuilder('result')
      .innerJoin('result.image', 'image')
      .where('result.evaluationId = :evaluationId', { evaluationId });
    if (filter.defectType !== undefined)
      query.andWhere('image.defectType = :defectType', { defectType: filter.defectType });
    if (filter.good !== undefined) query.andWhere(`image.defectType IS ${filter.good ? '' : 'NOT '}NULL`);
    if (filter.misclassified !== undefined)
      query.andWhere(`((result.score >= :threshold) <> (image.defectType IS NOT NULL)) = :misclassified`, {
        threshold: filter.misclassified.threshold,
        misclassified: filter.misclassified.value,
      });
    const order: KeysetOrder<EvaluationImageResultEntity> = {
      column: 'result.score',
      idColumn: 'result.imageId',
      direction,
      valueOf: (result) => result.score,
      idOf: (result) => result.imageId,
    };
    return paginate(query, order, page);
  }

  /** null when the evaluation has no result for the image. */
  async imageResultForDrawing(evaluationId: string, imageId: string): Promise<ImageResultForDrawing | null> {
    const rows = await this.manager.query<
      Array<{
        map_object_key: string;
        model_id: string;
        image_f1_threshold: number | null;
        object_key: string;
        width: number;
        height: number;
      }>
    >(
      `SELECT result.map_object_key, evaluation.model_id, evaluation.image_f1_threshold, image.object_key, image.width, image.height
         FROM evaluation_image_result result
         JOIN evaluation ON evaluation.id = result.evaluation_id
         JOIN image ON image.id = result.image_id
        WHERE result.evaluation_id = $1 AND result.image_id = $2`,
      [evaluationId, imageId],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      mapObjectKey: row.map_object_key,
      modelId: row.model_id,
      threshold: row.image_f1_threshold,
      imageObjectKey: row.object_key,
      width: row.width,
      height: row.height,
    };
  }

  /** Inserts or replaces the results, by (evaluation, image): an image is never counted twice. */
  async upsertImageResults(evaluationId: string, scoreRule: string, results: readonly ImageResult[]): Promise<void> {
    await this.manager.query(
      `INSERT INTO evaluation_image_result (evaluation_id, image_id, score, score_rule, map_object_key)
       SELECT $1, result.image_id, result.score, $2, result.map_object_key
         FROM unnest($3::uuid[], $4::float8[], $5::text[]) AS result(image_id, score, map_object_key)
       ON CONFLICT (evaluation_id, image_id) DO UPDATE
         SET score = EXCLUDED.score, score_rule = EXCLUDED.score_rule, map_object_key = EXCLUDED.map_object_key`,
      [
        evaluationId,
        scoreRule,
        results.map((result) => result.imageId),
        results.map((result) => result.score),
        results.map((result) => result.mapObjectKey),
      ],
    );
  }

  /** Sets `processed` to the number of result rows; false (nothing changed) if the evaluation is no longer RUNNING. */
  async recountProcessedIfRunning(evaluationId: string): Promise<boolean> {
    const updated = await queryRows<{ processed: number }>(
      this.manager,
      `UPDATE evaluation SET processed = (SELECT count(*) FROM evaluation_image_result WHERE evaluation_id = $1), updated_at = now()
        WHERE id = $1 AND status = 'RUNNING' RETURNING processed`,
      [evaluationId],
    );
    return updated.length > 0;
  }
}
