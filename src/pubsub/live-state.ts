import type { NotificationConnection } from './postgres-event-target';

/**
 * "Current state first, then every change, until a final state" subscriptions, for anything
 * whose state of record is a database row (jobs): a client that subscribes late, even after
 * the end, still gets the state at once, and no update between its load and the first
 * notification is lost, because the notifications are listened to before the first load.
 * When the connection notifications arrive on comes back after a loss, the state is reloaded
 * and sent again, since changes made meanwhile were not notified.
 */
export interface LiveStateSource<T> {
  /**
   * Notifications that the state may have changed (their payloads are ignored: the state is
   * reloaded). Listening must start at the first `next()`, as pub/sub subscriptions do.
   */
  changes: AsyncIterable<unknown>;
  /** Where `changes` come from (the pub/sub's connection); absent for a pub/sub within one process. */
  connection?: NotificationConnection;
  /** The current state; null once it no longer exists. */
  load(): Promise<T | null>;
  /** After a final state the subscription completes. */
  isFinal(state: T): boolean;
  /** Two loads showing the same state are delivered once. */
  isSame?(previous: T, next: T): boolean;
}

/**
 * Subscribes to the changes, then loads the current state. Resolves to null when there is no
 * such state (the caller reports NOT_FOUND), else to an iterator for a GraphQL subscription.
 */
export async function subscribeToLiveState<T>(source: LiveStateSource<T>): Promise<AsyncIterableIterator<T> | null> {
  const iterator = new LiveStateIterator(source);
  const initial = await source.load();
  if (initial === null) {
    await iterator.return();
    return null;
  }
  iterator.start(initial);
  return iterator;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * Hand-written rather than an async generator: a generator waiting for the next change
 * cannot be returned from until that change comes, so a client that unsubscribes from an
 * idle job would leave its listener behind.
 */
class LiveStateIterator<T> implements AsyncIterableIterator<T> {
  private readonly changes: AsyncIterator<unknown>;
  private current: T | null = null;
  private initialDelivered = false;
  private changed = false;
  /** Set when notifications may have been missed: the next load is sent even if it looks the same. */
  private resend = false;
  private changesEnded = false;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly stopWatchingConnection: () => void;

  constructor(private readonly source: LiveStateSource<T>) {
    this.changes = source.changes[Symbol.asyncIterator]();
    void this.drainChanges();
    this.stopWatchingConnection =
      source.connection?.onConnectionChange((connected) => {
        if (!connected) return;
        this.changed = true;
        this.resend = true;
        this.wake?.();
      }) ?? (() => undefined);
  }

  /** Pulls notifications as they come, so they coalesce into one reload instead of queueing up. */
  private async drainChanges(): Promise<void> {
    try {
      for (;;) {
        const result = await this.changes.next();
        if (result.done) break;
        this.changed = true;
        this.wake?.();
      }
    } catch {
      // A broken notification stream ends the subscription after the current state.
    } finally {
      this.changesEnded = true;
      this.wake?.();
    }
  }

  start(initial: T): void {
    this.current = initial;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.closed || this.current === null) return DONE;
    if (!this.initialDelivered) {
      this.initialDelivered = true;
      return { done: false, value: this.current };
    }
    for (;;) {
      if (this.source.isFinal(this.current)) return this.return();
      while (!this.changed && !this.changesEnded && !this.closed) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
      }
      if (this.closed || !this.changed) return this.return();
      this.changed = false;
      const resend = this.resend;
      this.resend = false;
      const next = await this.source.load();
      if (this.closed || next === null) return this.return();
      const same = this.source.isSame?.(this.current, next) ?? false;
      this.current = next;
      if (!same || resend) return { done: false, value: next };
    }
  }

  async return(): Promise<IteratorResult<T>> {
    if (!this.closed) {
      this.closed = true;
      this.stopWatchingConnection();
      this.wake?.();
      await this.changes.return?.();
    }
    return DONE;
  }
}
