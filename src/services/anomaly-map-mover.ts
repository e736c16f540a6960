import type { Logger } from 'pino';
import type { InspectionRepository } from '../db/repositories/inspection.repository';
import { MAP_OBJECT_CONTENT_TYPE } from '../formats/anomaly-map-object';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { mapConcurrently } from '../utils/concurrency';

/** Maps PUT at once by one move. */
const MOVE_CONCURRENCY = 4;
/**
 * Moves allowed to trail behind the answers. Beyond it a move is left to the sweep rather than
 * held in memory: the map is safe in its row meanwhile.
 */
const MAX_TRAILING_MOVES = 64;
/** The sweep moves maps that have waited this long (a move skipped, failed or cut by a crash). */
const SWEEP_AFTER_MS = 30_000;
const SWEEP_BATCH = 50;

/** An inspection's exact map object (AMAP bytes), as written into its row. */
export interface PendingAnomalyMap {
  inspectionId: string;
  object: Buffer;
}

/**
 * An inspection's exact anomaly map is written into its row with the row itself (one INSERT on
 * the answer's path, durable at once); afterwards this moves it to its own S3 object and clears
 * it from the row, so that rows stay small. A move that fails or is skipped under load leaves
 * the map in its row, where readers find it, until the periodic sweep moves it.
 */
export class AnomalyMapMover {
  private readonly moves = new Set<Promise<void>>();

  constructor(
    private readonly inspections: InspectionRepository,
    private readonly objectStore: ObjectStore,
    private readonly logger: Logger,
  ) {}

  /** Starts moving the maps of inspections just stored; never waits for it. */
  moveSoon(maps: readonly PendingAnomalyMap[]): void {
    if (maps.length === 0 || this.moves.size >= MAX_TRAILING_MOVES) return;
    // setImmediate: the answer goes out before the PUTs are signed and sent.
    const move = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.move(maps));
    this.moves.add(move);
    void move.finally(() => this.moves.delete(move));
  }

  /** Moves the maps that have waited longer than they should; returns how many moved. */
  async sweep(now = new Date()): Promise<number> {
    const ids = await this.inspections.idsWithPendingMaps(new Date(now.getTime() - SWEEP_AFTER_MS), SWEEP_BATCH);
    const maps: PendingAnomalyMap[] = [];
    for (const inspectionId of ids) {
      const object = await this.inspections.pendingMap(inspectionId);
      if (object) maps.push({ inspectionId, object });
    }
    await this.move(maps);
    return maps.length;
  }

  /** Resolves once the moves under way are done (shutdown waits for it before the pool closes). */
  async drain(): Promise<void> {
    while (this.moves.size > 0) await Promise.all(this.moves);
  }

  /** Never rejects: what cannot move stays in its row and is logged. */
  private async move(maps: readonly PendingAnomalyMap[]): Promise<void> {
    const stored: Array<{ inspectionId: string; objectKey: string }> = [];
    await mapConcurrently(maps, MOVE_CONCURRENCY, async ({ inspectionId, object }) => {
      const objectKey = objectKeys.inspectionAnomalyMap(inspectionId);
      try {
        await this.objectStore.put(objectKey, object, MAP_OBJECT_CONTENT_TYPE);
        stored.push({ inspectionId, objectKey });
      } catch (error) {
        this.logger.warn({ err: error, inspectionId }, 'could not move the anomaly map of an inspection to S3');
      }
    });
    if (stored.length === 0) return;
    // A row deleted meanwhile leaves its object to the orphan sweep (OrphanSweepService), which
    // removes objects under inspections/ without a row; one moved by another process too is
    // the same object, the same bytes.
    await this.inspections.linkAnomalyMaps(stored).catch((error: unknown) => {
      // The maps stay in the rows; the next move overwrites the objects.
      this.logger.warn({ err: error, count: stored.length }, 'could not point inspections at their moved maps');
    });
  }
}
