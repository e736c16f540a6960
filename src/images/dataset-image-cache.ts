import { LRUCache } from 'lru-cache';

/**
 * Bytes of dataset images recently read, least recently used out first, bounded in bytes.
 * A dataset image's object is written once under its image id and never replaced, so a cached
 * copy cannot go stale; a deleted image is refused by its row lookup before its bytes matter.
 * Inspections and evaluations read the same images again and again; an inspection upload is
 * read once and never comes here.
 */
export class DatasetImageCache {
  private readonly cache: LRUCache<string, Buffer> | null;
  /** Reads of the same key in flight: one S3 GET for all of them. */
  private readonly reading = new Map<string, Promise<Buffer>>();

  constructor(maxBytes: number) {
    this.cache =
      maxBytes > 0
        ? new LRUCache<string, Buffer>({ maxSize: maxBytes, sizeCalculation: (bytes) => bytes.length || 1 })
        : null;
  }

  /** The bytes of `key`, from memory or from `read` (then kept, unless larger than the whole cache). */
  async get(key: string, read: () => Promise<Buffer>): Promise<Buffer> {
    if (!this.cache) return read();
    const cached = this.cache.get(key);
    if (cached) return cached;
    const inFlight = this.reading.get(key);
    if (inFlight) return inFlight;
    const reading = read().then((bytes) => {
      // LRUCache refuses (and skips) an entry larger than maxSize.
      this.cache?.set(key, bytes);
      return bytes;
    });
    this.reading.set(key, reading);
    try {
      return await reading;
    } finally {
      this.reading.delete(key);
    }
  }
}
