import { InferenceCancelledError, InferenceTimeoutError, QueueFullError } from './errors';

/**
 * Dynamic micro-batching. Each model has a {@link BatchQueue}; one {@link BatchScheduler}
 * shares the worker slots between the queues.
 *
 * A queue is *ready* when it holds `maxBatchSize` requests or its oldest request has waited
 * `maxQueueDelayMs`. Whenever a slot is free (fewer than `concurrency` batches running), the
 * ready queue whose oldest request is oldest sends up to `maxBatchSize` requests as one batch.
 * Requests keep gathering while every slot is busy, so batches grow under load instead of
 * piling up as small batches in the worker pool's own queue.
 */

export interface BatchingOptions {
  readonly maxBatchSize: number;
  /** How long the first request of a batch may wait for company; 0: send at once. */
  readonly maxQueueDelayMs: number;
  /** Requests a queue holds (not counting running batches) before it refuses with QUEUE_FULL. */
  readonly maxQueueLength: number;
  /** Batches running at once over all queues (the number of workers). */
  readonly concurrency: number;
}

export interface SubmitOptions {
  /** Rejects with INFERENCE_TIMEOUT after this long, queued or running; Infinity: never. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Admit even when the queue is full (callers that bound their own outstanding requests). */
  readonly bypassQueueBound?: boolean;
}

/** Requests of one submitGroup: sent as one batch of their own, with no other request. */
type BatchGroup = object;

export interface BatchedResult<R> {
  readonly value: R;
  /** From submission until the batch was sent. */
  readonly queueMs: number;
  /** From submission until the result arrived. */
  readonly totalMs: number;
  readonly batchSize: number;
}

export type RunBatch<T, R> = (payloads: readonly T[]) => Promise<readonly R[]>;

/** What a queue reports as it goes (metrics); called synchronously, must not throw. */
export interface QueueEvents {
  /** A batch of `size` requests was sent to run. */
  batchSent(size: number): void;
  /** A request's result arrived, `totalMs` after it was submitted. */
  completed(totalMs: number): void;
  /** A request was refused with QUEUE_FULL. */
  refusedQueueFull(): void;
}

const NO_EVENTS: QueueEvents = {
  batchSent: () => undefined,
  completed: () => undefined,
  refusedQueueFull: () => undefined,
};

export interface QueueCounters {
  submitted: number;
  completed: number;
  failed: number;
  timedOut: number;
  cancelled: number;
  rejectedQueueFull: number;
  batches: number;
  batchedRequests: number;
  largestBatch: number;
}

interface Entry<T, R> {
  readonly payload: T;
  readonly submittedAt: number;
  state: 'queued' | 'running' | 'settled';
  dispatchedAt: number;
  readonly group: BatchGroup | undefined;
  readonly resolve: (result: BatchedResult<R>) => void;
  readonly reject: (error: Error) => void;
  cleanup: () => void;
}

/** What the scheduler needs of a queue. */
interface SchedulableQueue {
  readyAt(): number;
  oldestSubmittedAt(): number;
  armDelayTimer(at: number, now: number): void;
  dispatch(now: number): void;
}

export class BatchQueue<T, R> implements SchedulableQueue {
  private readonly pending: Entry<T, R>[] = [];
  private runningBatches = 0;
  private delayTimer: NodeJS.Timeout | undefined;
  private delayDeadline = Number.POSITIVE_INFINITY;
  private closedWith: (() => Error) | undefined;
  private idleWaiters: Array<() => void> = [];
  readonly counters: QueueCounters = {
    submitted: 0,
    completed: 0,
    failed: 0,
    timedOut: 0,
    cancelled: 0,
    rejectedQueueFull: 0,
    batches: 0,
    batchedRequests: 0,
    largestBatch: 0,
  };

  constructor(
    /** The model key, for error messages. */
    readonly label: string,
    private readonly runBatch: RunBatch<T, R>,
    private readonly scheduler: BatchScheduler,
    private readonly events: QueueEvents = NO_EVENTS,
  ) {}

  get queued(): number {
    return this.pending.length;
  }

  get running(): number {
    return this.runningBatches;
  }

  submit(payload: T, options: SubmitOptions): Promise<BatchedResult<R>> {
    const result = this.enqueue(payload, options, undefined);
    this.scheduler.pump();
    return result;
  }

  /**
   * Requests that run as exactly one batch, with no other request in it (sent as soon as a
   * slot is free): for callers whose results must not depend on other traffic, since some
   * models' kernels give slightly different outputs at different batch sizes.
   */
  submitGroup(payloads: readonly T[], options: SubmitOptions): Array<Promise<BatchedResult<R>>> {
    const group: BatchGroup = {};
    const results = payloads.map((payload) => this.enqueue(payload, options, group));
    this.scheduler.pump();
    return results;
  }

  private enqueue(payload: T, options: SubmitOptions, group: BatchGroup | undefined): Promise<BatchedResult<R>> {
    if (this.closedWith) return Promise.reject(this.closedWith());
    const { maxQueueLength } = this.scheduler.options;
    if (!options.bypassQueueBound && this.pending.length >= maxQueueLength) {
      this.counters.rejectedQueueFull++;
      this.events.refusedQueueFull();
      return Promise.reject(new QueueFullError(this.label, maxQueueLength));
    }
    if (options.signal?.aborted) {
      this.counters.cancelled++;
      return Promise.reject(new InferenceCancelledError(this.label));
    }
    return new Promise<BatchedResult<R>>((resolve, reject) => {
      const entry: Entry<T, R> = {
        payload,
        submittedAt: performance.now(),
        state: 'queued',
        dispatchedAt: 0,
        group,
        resolve,
        reject,
        cleanup: () => undefined,
      };
      let timer: NodeJS.Timeout | undefined;
      if (Number.isFinite(options.timeoutMs)) {
        timer = setTimeout(() => {
          const stage = entry.state === 'running' ? 'running' : 'queued';
          if (this.abandon(entry, new InferenceTimeoutError(this.label, options.timeoutMs, stage)))
            this.counters.timedOut++;
        }, options.timeoutMs);
      }
      const signal = options.signal;
      const onAbort = (): void => {
        if (this.abandon(entry, new InferenceCancelledError(this.label))) this.counters.cancelled++;
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      entry.cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.counters.submitted++;
      this.pending.push(entry);
    });
  }

  /**
   * Refuses new requests from now on and rejects the queued ones; running batches finish.
   * `error` builds the rejection (e.g. MODEL_NOT_LOADED, ENGINE_CLOSED).
   */
  close(error: () => Error): void {
    this.closedWith = error;
    for (const entry of this.pending.splice(0)) this.settle(entry, error());
    this.clearDelayTimer();
    this.scheduler.removeQueue(this);
    this.notifyIfIdle();
  }

  /** Resolves once nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (this.pending.length === 0 && this.runningBatches === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** @internal The scheduler's view: when this queue's head becomes sendable (ms, performance.now clock). */
  readyAt(): number {
    if (this.pending.length === 0) return Number.POSITIVE_INFINITY;
    if (this.pending.length >= this.scheduler.options.maxBatchSize || this.pending[0].group !== undefined)
      return Number.NEGATIVE_INFINITY;
    return this.pending[0].submittedAt + this.scheduler.options.maxQueueDelayMs;
  }

  /** @internal */
  oldestSubmittedAt(): number {
    return this.pending.length === 0 ? Number.POSITIVE_INFINITY : this.pending[0].submittedAt;
  }

  /** @internal Keeps one timer per queue, at the moment its head becomes sendable. */
  armDelayTimer(at: number, now: number): void {
    if (!Number.isFinite(at) || at <= now) {
      this.clearDelayTimer();
      return;
    }
    if (this.delayTimer !== undefined && this.delayDeadline === at) return;
    this.clearDelayTimer();
    this.delayDeadline = at;
    this.delayTimer = setTimeout(
      () => {
        this.delayTimer = undefined;
        this.delayDeadline = Number.POSITIVE_INFINITY;
        this.scheduler.pump();
      },
      Math.ceil(at - now),
    );
  }

  /** @internal Sends up to maxBatchSize queued requests as one batch, or the group at the head alone. */
  dispatch(now: number): void {
    const group = this.pending[0]?.group;
    const limit = group === undefined ? this.scheduler.options.maxBatchSize : this.pending.length;
    let count = 0;
    while (count < limit && count < this.pending.length && this.pending[count].group === group) count++;
    const entries = this.pending.splice(0, count);
    for (const entry of entries) {
      entry.state = 'running';
      entry.dispatchedAt = now;
    }
    this.runningBatches++;
    this.counters.batches++;
    this.counters.batchedRequests += entries.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, entries.length);
    this.events.batchSent(entries.length);
    Promise.resolve()
      .then(() => this.runBatch(entries.map((entry) => entry.payload)))
      .then(
        (values) => {
          const finishedAt = performance.now();
          entries.forEach((entry, i) => {
            if (entry.state !== 'running') return;
            this.counters.completed++;
            this.events.completed(finishedAt - entry.submittedAt);
            this.settle(entry, {
              value: values[i],
              queueMs: entry.dispatchedAt - entry.submittedAt,
              totalMs: finishedAt - entry.submittedAt,
              batchSize: entries.length,
            });
          });
        },
        (error: unknown) => {
          const failure = error instanceof Error ? error : new Error(String(error));
          for (const entry of entries) {
            if (entry.state !== 'running') continue;
            this.counters.failed++;
            this.settle(entry, failure);
          }
        },
      )
      .finally(() => {
        this.runningBatches--;
        this.scheduler.batchFinished();
        this.notifyIfIdle();
      });
  }

  private clearDelayTimer(): void {
    clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    this.delayDeadline = Number.POSITIVE_INFINITY;
  }

  /** Gives up on one request (timeout, abort); a running batch still completes without it. */
  private abandon(entry: Entry<T, R>, error: Error): boolean {
    if (entry.state === 'settled') return false;
    if (entry.state === 'queued') {
      const index = this.pending.indexOf(entry);
      if (index >= 0) this.pending.splice(index, 1);
    }
    this.settle(entry, error);
    this.scheduler.pump();
    this.notifyIfIdle();
    return true;
  }

  private settle(entry: Entry<T, R>, outcome: BatchedResult<R> | Error): void {
    if (entry.state === 'settled') return;
    entry.state = 'settled';
    entry.cleanup();
    if (outcome instanceof Error) entry.reject(outcome);
    else entry.resolve(outcome);
  }

  private notifyIfIdle(): void {
    if (this.pending.length > 0 || this.runningBatches > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

export class BatchScheduler {
  private readonly queues = new Set<SchedulableQueue>();
  private running = 0;

  constructor(readonly options: BatchingOptions) {}

  get runningBatches(): number {
    return this.running;
  }

  createQueue<T, R>(label: string, runBatch: RunBatch<T, R>, events?: QueueEvents): BatchQueue<T, R> {
    const queue = new BatchQueue<T, R>(label, runBatch, this, events);
    this.queues.add(queue);
    return queue;
  }

  /** @internal */
  removeQueue(queue: SchedulableQueue): void {
    this.queues.delete(queue);
  }

  /** @internal */
  batchFinished(): void {
    this.running--;
    this.pump();
  }

  /** Sends every batch that is ready while slots are free, then re-arms the delay timers. */
  pump(): void {
    const now = performance.now();
    // Timers may fire a hair before performance.now() reaches their deadline.
    const horizon = now + 1;
    while (this.running < this.options.concurrency) {
      let next: SchedulableQueue | undefined;
      for (const queue of this.queues) {
        if (queue.readyAt() > horizon) continue;
        if (next === undefined || queue.oldestSubmittedAt() < next.oldestSubmittedAt()) next = queue;
      }
      if (next === undefined) break;
      this.running++;
      next.dispatch(now);
    }
    const slotsFree = this.running < this.options.concurrency;
    for (const queue of this.queues) {
      // With every slot busy, a finishing batch pumps again; no timer is needed until then.
      queue.armDelayTimer(slotsFree ? queue.readyAt() : Number.POSITIVE_INFINITY, horizon);
    }
  }
}
