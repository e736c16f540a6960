import { LRUCache } from 'lru-cache';

/**
 * Bytes of dataset images recently inspected, least recently used out first, bounded in bytes;
 * concurrent reads of one image make one read (lru-cache's `fetch`). A dataset image's object
 * is written once under its image id and never replaced, so a cached copy cannot go stale; a
 * deleted image is refused by its row lookup before its bytes matter. An inspection upload is
 * read once and never comes here.
 */
export class DatasetImageCache {
  private readonly cache: LRUCache<string, Buffer> | null;

  constructor(
    maxBytes: number,
    private readonly read: (key: string) => Promise<Buffer>,
  ) {
    this.cache =
      maxBytes > 0
        ? new LRUCache<string, Buffer>({
            maxSize: maxBytes,
            sizeCalculation: (bytes) => bytes.length || 1,
            fetchMethod: (key) => read(key),
          })
        : null;
  }

  /** The bytes of the object `key`, from memory or read (then kept, unless larger than the whole cache). */
  async get(key: string): Promise<Buffer> {
    if (!this.cache) return this.read(key);
    const bytes = await this.cache.fetch(key);
    if (!bytes) throw new Error(`no bytes were read for ${key}`);
    return bytes;
  }
}
