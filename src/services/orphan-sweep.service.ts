import type { Logger } from 'pino';
import type { Database } from '../db/repositories';
import type { ObjectOwnerTable } from '../db/repositories/image.repository';
import type { ExclusiveLock } from '../jobs/exclusive-lock';
import { objectKeys } from '../storage/object-keys';
import type { ObjectInfo, ObjectStore } from '../storage/object-store';

export interface OrphanSweepReport {
  /** Pending uploads past their expiry, removed with their objects. */
  expiredUploads: number;
  /** Objects under one of our prefixes (OWNED_PREFIXES) whose owning row does not exist. */
  orphanObjects: number;
}

export interface OrphanSweepOptions {
  /**
   * Objects younger than this are left alone: between storing an image's object and
   * committing its row there is a moment when the object has no row yet.
   */
  graceSeconds: number;
  /** Keeps replicas from sweeping at the same time; null: no lock (a single process). */
  lock: ((key: string) => Promise<ExclusiveLock | null>) | null;
}

const BATCH = 1000;
/** Each prefix's objects belong to the row whose id follows the prefix in their key. */
const OWNED_PREFIXES: ReadonlyArray<readonly [prefix: string, table: ObjectOwnerTable]> = [
  [objectKeys.uploadPrefix, 'image_upload'],
  [objectKeys.imagePrefix, 'image'],
  [objectKeys.maskPrefix, 'image'],
  [objectKeys.modelUploadPrefix, 'model_upload'],
  [objectKeys.modelPrefix, 'model_version'],
  [objectKeys.inspectionUploadPrefix, 'inspection_upload'],
  [objectKeys.inspectionPrefix, 'inspection'],
  [objectKeys.evaluationsPrefix, 'evaluation'],
];
const UUID_AFTER_PREFIX = /^([0-9a-f-]{36})(?:\/|$)/;

/**
 * Keeps S3 and PostgreSQL consistent where a crash or a failed delete could leave an
 * object behind: expired pending uploads, and objects under our prefixes without a row
 * (e.g. an inspection's images when its model was deleted, or a crash between an
 * inspection's PUTs and its insert).
 */
export class OrphanSweepService {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly logger: Logger,
    private readonly options: OrphanSweepOptions,
  ) {}

  async sweep(): Promise<OrphanSweepReport> {
    const lock = this.options.lock ? await this.options.lock('orphan-sweep') : null;
    if (this.options.lock && !lock) return { expiredUploads: 0, orphanObjects: 0 };
    try {
      const expiredUploads = await this.removeExpiredUploads();
      let orphanObjects = 0;
      for (const [prefix, table] of OWNED_PREFIXES) orphanObjects += await this.removeObjectsWithoutRows(prefix, table);
      if (expiredUploads + orphanObjects > 0)
        this.logger.info({ expiredUploads, orphanObjects }, 'orphan sweep removed leftovers');
      return { expiredUploads, orphanObjects };
    } finally {
      await lock?.release();
    }
  }

  /**
   * Image uploads that expired more than graceSeconds ago, in batches until none is left. Not
   * PresignedUploads.sweepExpired() (one batch, no grace), which model and inspection uploads use.
   */
  private async removeExpiredUploads(): Promise<number> {
    let removed = 0;
    for (;;) {
      const expired = await this.db.imageUploads.listExpired(BATCH, this.options.graceSeconds);
      const ids = expired.map((upload) => upload.id);
      if (ids.length === 0) return removed;
      // Objects first: if that fails, the rows stay and the next sweep tries again.
      await this.objectStore.delete(
        ids.flatMap((id) => [objectKeys.upload(id, 'file'), objectKeys.upload(id, 'mask')]),
      );
      await this.db.imageUploads.delete(ids);
      removed += ids.length;
      if (ids.length < BATCH) return removed;
    }
  }

  private async removeObjectsWithoutRows(prefix: string, table: ObjectOwnerTable): Promise<number> {
    const cutoff = Date.now() - this.options.graceSeconds * 1000;
    let removed = 0;
    let batch: Array<ObjectInfo & { id: string | null }> = [];
    const flush = async (): Promise<void> => {
      const ids = [...new Set(batch.flatMap((object) => (object.id ? [object.id] : [])))];
      const existing = ids.length ? await this.db.images.existingOwnerIds(table, ids) : new Set<string>();
      const orphans = batch
        .filter(
          (object) =>
            (object.lastModified?.getTime() ?? 0) < cutoff && (object.id === null || !existing.has(object.id)),
        )
        .map((object) => object.key);
      if (orphans.length) await this.objectStore.delete(orphans);
      removed += orphans.length;
      batch = [];
    };
    for await (const object of this.objectStore.list(prefix)) {
      // A key under our prefixes that no id can be read from was not written by us: an orphan too.
      batch.push({ ...object, id: UUID_AFTER_PREFIX.exec(object.key.slice(prefix.length))?.[1] ?? null });
      if (batch.length >= BATCH) await flush();
    }
    if (batch.length) await flush();
    return removed;
  }

  /** Sweeps every `intervalSeconds` (and once at start); 0 disables. */
  start(intervalSeconds: number): void {
    if (intervalSeconds <= 0 || this.timer) return;
    const run = (): void => {
      if (this.running) return;
      this.running = this.sweep()
        .catch((error: unknown) =>
          this.logger.warn({ err: error }, 'orphan sweep failed; retrying at the next interval'),
        )
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(run, intervalSeconds * 1000);
    this.timer.unref();
    run();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
