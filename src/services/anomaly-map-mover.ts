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
/** Batches one sweep moves at most (a backlog left by a long overload drains over a few sweeps). */
const SWEEP_MAX_BATCHES = 20;

/** An inspection's exact map object (NPY bytes; AMAP in older rows), as written into its row. */
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
    const move = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      await this.move(maps);
    });
    this.moves.add(move);
    void move.finally(() => this.moves.delete(move));
  }

  /** Moves the maps that have waited longer than they should; returns how many moved. */
  async sweep(now = new Date()): Promise<number> {
    const before = new Date(now.getTime() - SWEEP_AFTER_MS);
    let moved = 0;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const maps = await this.inspections.pendingMapsBefore(before, SWEEP_BATCH);
      const stored = await this.move(maps);
      moved += stored;
      // The last batch, or S3 refusing: the next sweep tries again.
      if (maps.length < SWEEP_BATCH || stored < maps.length) break;
    }
    return moved;
  }

  /** Resolves once the moves under way are done (shutdown waits for it before the pool closes). */
  async drain(): Promise<void> {
    while (this.moves.size > 0) await Promise.all(this.moves);
  }

  /** How many maps moved. Never rejects: what cannot move stays in its row and is logged. */
  private async move(maps: readonly PendingAnomalyMap[]): Promise<number> {
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
    if (stored.length === 0) return 0;
    // A row deleted meanwhile leaves its object to the orphan sweep (OrphanSweepService), which
    // removes objects under inspections/ without a row; one moved by another process too is
    // the same object, the same bytes.
    try {
      await this.inspections.linkAnomalyMaps(stored);
      return stored.length;
    } catch (error) {
      // The maps stay in the rows; the next move overwrites the objects.
      this.logger.warn({ err: error, count: stored.length }, 'could not point inspections at their moved maps');
      return 0;
    }
  }
}
