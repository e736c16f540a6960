/**
 * Admission control: at most `capacity` units of work in flight at once (per process). A
 * request takes every slot it needs or none, before it does any work, so what is refused costs
 * nothing; what is admitted gives its slots back exactly once, however it ends.
 */
export class Admission {
  private used = 0;

  constructor(
    readonly capacity: number,
    /** Called on every refusal (metrics). */
    private readonly onRefused: (count: number) => void = () => undefined,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /** Slots taken now. */
  get inFlight(): number {
    return this.used;
  }

  /**
   * Takes `count` slots: the function that gives them back (calling it again does nothing), or
   * null when fewer than `count` are free (nothing is taken then).
   */
  tryAcquire(count = 1): (() => void) | null {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
    if (this.used + count > this.capacity) {
      this.onRefused(count);
      return null;
    }
    this.used += count;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= count;
    };
  }
}
