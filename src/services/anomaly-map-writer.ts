import type { Logger } from 'pino';
import type { InspectionRepository } from '../db/repositories/inspection.repository';
import { encodeMapObject, MAP_OBJECT_CONTENT_TYPE } from '../formats/anomaly-map-object';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { mapConcurrently } from '../utils/concurrency';

/** Maps encoded and PUT at once by one write. */
const WRITE_CONCURRENCY = 4;
/**
 * Anomaly-map writes (each one inspect's or inspectBatch's maps) allowed to trail behind the
 * answers; beyond it, answers wait for S3 to catch up rather than maps piling up in memory.
 */
const MAX_TRAILING_MAP_WRITES = 64;

/** An inspection's anomaly map at the model's input resolution. */
export interface InspectionAnomalyMap {
  inspectionId: string;
  /** Not modified while it is written: a copy of the caller's own. */
  anomalyMap: Float32Array;
  mapWidth: number;
  mapHeight: number;
}

/**
 * The raw anomaly maps of inspections, kept for later analysis. No response needs them, so they
 * are encoded and PUT after the inspections were answered (one S3 PUT fewer on the request
 * path); a row points at its map once the object is stored. A map that cannot be stored leaves
 * its row without one and is logged; the object of a row deleted meanwhile is removed again.
 */
export class AnomalyMapWriter {
  /** Writes still going on after their inspections were answered. */
  private readonly writes = new Set<Promise<void>>();

  constructor(
    private readonly inspections: InspectionRepository,
    private readonly objectStore: ObjectStore,
    private readonly logger: Logger,
  ) {}

  /** Starts writing the maps of stored inspections; waits only while too many writes trail behind. */
  async keep(maps: readonly InspectionAnomalyMap[]): Promise<void> {
    // setImmediate: the answer goes out before the maps are encoded and their PUTs signed.
    const write = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.write(maps))
      .catch((error: unknown) => this.logger.warn({ err: error }, 'could not remove unlinked anomaly map objects'));
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
    // The writes never reject (failures are logged).
    while (this.writes.size > MAX_TRAILING_MAP_WRITES) await Promise.race(this.writes);
  }

  /** Resolves once the maps being written are stored (shutdown waits for it before the pool closes). */
  async drain(): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes);
  }

  private async write(maps: readonly InspectionAnomalyMap[]): Promise<void> {
    const stored: Array<{ inspectionId: string; objectKey: string }> = [];
    await mapConcurrently(maps, WRITE_CONCURRENCY, async (map) => {
      const objectKey = objectKeys.inspectionAnomalyMap(map.inspectionId);
      try {
        await this.objectStore.put(
          objectKey,
          encodeMapObject(map.anomalyMap, map.mapWidth, map.mapHeight),
          MAP_OBJECT_CONTENT_TYPE,
        );
        stored.push({ inspectionId: map.inspectionId, objectKey });
      } catch (error) {
        this.logger.warn(
          { err: error, inspectionId: map.inspectionId },
          'could not store the anomaly map of an inspection',
        );
      }
    });
    if (stored.length === 0) return;
    let linked = new Set<string>();
    try {
      linked = await this.inspections.linkAnomalyMaps(stored);
    } catch (error) {
      const inspectionIds = stored.map((map) => map.inspectionId);
      this.logger.warn({ err: error, inspectionIds }, 'could not link stored anomaly maps to their inspections');
    }
    const unlinked = stored.filter((map) => !linked.has(map.inspectionId)).map((map) => map.objectKey);
    if (unlinked.length > 0) await this.objectStore.delete(unlinked);
  }
}
