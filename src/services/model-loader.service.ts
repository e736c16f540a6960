import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ModelVersionEntity } from '../db/entities/model-version.entity';
import type { Database } from '../db/repositories';
import { InvalidModelError, type InferenceEngine, type LoadedModel, type ModelMetadata } from '../inference';
import type { AppPubSub, Topics } from '../pubsub/pubsub';
import type { ObjectStore } from '../storage/object-store';

/** Inactive versions kept loaded after an explicit `inspect(modelId)`, least recently used first out. */
const MAX_INACTIVE_LOADED = 2;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export type LoadableModel = Pick<ModelVersionEntity, 'id' | 'objectKey' | 'sha256'>;

export interface ModelFileSettings {
  /** Longest a model's load and warm-up may take before it is refused (MODEL_WARMUP_TIMEOUT_MS). */
  warmupTimeoutMs: number;
}

function warmupTimedOut(timeoutMs: number): InvalidModelError {
  return new InvalidModelError([
    `loading and warming up the model took longer than the warm-up timeout of ${timeoutMs} ms (MODEL_WARMUP_TIMEOUT_MS)`,
  ]);
}

/** setTimeout fires at once for delays beyond this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `work`'s value, or 'timeout' when `timeoutMs` passes first (the work goes on regardless). */
async function settleWithin<T>(work: Promise<T>, timeoutMs: number): Promise<{ value: T } | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), Math.min(timeoutMs, MAX_TIMER_MS));
  });
  try {
    return await Promise.race([work.then((value) => ({ value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Keeps this process's InferenceEngine holding the models it must serve: every category's
 * active version (loaded at start, and whenever any process activates one), plus a few
 * inactive versions asked for by id. Engine keys are model version ids.
 *
 * Every model file reaches onnxruntime through here (validation at registration, and loads):
 * the contract's static checks run first (no external data, standard op domains only, input
 * size within MODEL_MAX_INPUT_SIZE), and a load or validation that outlasts
 * MODEL_WARMUP_TIMEOUT_MS is refused; onnxruntime cannot be interrupted, so its session is
 * released once it finishes.
 */
export class ModelLoaderService {
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  /** Last use of each loaded model, for evicting inactive ones. */
  private readonly lastUsed = new Map<string, number>();
  /** Why and when the last load of a model failed, shown by the readiness check. */
  private readonly loadErrors = new Map<string, { message: string; at: number }>();
  /** Loads that outlasted the warm-up timeout, until they finish and are unloaded again. */
  private readonly overdueLoads = new Map<string, Promise<void>>();
  /** Validations that outlasted the warm-up timeout, until they finish. */
  private readonly overdueValidations = new Set<Promise<unknown>>();
  private events: AsyncIterator<Topics['MODEL_VERSION_CHANGED'][0]> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = RETRY_MIN_MS;
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly engine: InferenceEngine,
    private readonly pubSub: AppPubSub | null,
    private readonly logger: Logger,
    private readonly settings: ModelFileSettings,
  ) {}

  /**
   * Checks a model file against the contract and runs one warm-up inference without keeping it
   * (registration). Throws {@link InvalidModelError}.
   */
  async validate(bytes: Buffer): Promise<ModelMetadata> {
    const validation = this.engine.validateModel(bytes);
    const outcome = await settleWithin(validation, this.settings.warmupTimeoutMs);
    if (outcome !== 'timeout') return outcome.value;
    // The worker releases a validation's session itself once its warm-up ends.
    const overdue = validation.catch(() => undefined).finally(() => this.overdueValidations.delete(overdue));
    this.overdueValidations.add(overdue);
    throw warmupTimedOut(this.settings.warmupTimeoutMs);
  }

  /** The model loaded and warmed up in this process; loads it (once, however many ask) if needed. */
  ensureLoaded(model: LoadableModel): Promise<LoadedModel> {
    this.lastUsed.set(model.id, Date.now());
    // Not retried while its last load, refused for its warm-up time, still runs.
    if (this.overdueLoads.has(model.id)) return Promise.reject(warmupTimedOut(this.settings.warmupTimeoutMs));
    const loaded = this.engine.getModel(model.id);
    if (loaded) return Promise.resolve(loaded);
    let pending = this.loading.get(model.id);
    if (!pending) {
      pending = this.load(model).finally(() => this.loading.delete(model.id));
      this.loading.set(model.id, pending);
    }
    return pending;
  }

  private async load(model: LoadableModel): Promise<LoadedModel> {
    const started = performance.now();
    try {
      const bytes = await this.objectStore.get(model.objectKey);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (sha256 !== model.sha256)
        throw new InvalidModelError([`the stored file has SHA-256 ${sha256}, not the registered ${model.sha256}`]);
      const loaded = await this.loadWithinTimeout(model.id, bytes);
      this.loadErrors.delete(model.id);
      this.logger.info(
        { modelId: model.id, loadMs: Math.round(performance.now() - started), warmupMs: Math.round(loaded.warmupMs) },
        'model loaded and warmed up',
      );
      void this.evictInactive().catch((error: unknown) =>
        this.logger.warn({ err: error }, 'could not evict inactive models'),
      );
      return loaded;
    } catch (error) {
      this.loadErrors.set(model.id, {
        message: error instanceof Error ? error.message : String(error),
        at: Date.now(),
      });
      throw error;
    }
  }

  private async loadWithinTimeout(id: string, bytes: Buffer): Promise<LoadedModel> {
    const loading = this.engine.loadModel(id, bytes);
    const outcome = await settleWithin(loading, this.settings.warmupTimeoutMs);
    if (outcome !== 'timeout') return outcome.value;
    // No other load of `id` starts meanwhile (ensureLoaded refuses it), so this unloads this load.
    const overdue = loading
      .then(
        () => this.engine.unloadModel(id),
        () => false,
      )
      .then(
        () => undefined,
        (error: unknown) => this.logger.warn({ err: error, modelId: id }, 'could not unload an overdue model'),
      )
      .finally(() => this.overdueLoads.delete(id));
    this.overdueLoads.set(id, overdue);
    throw warmupTimedOut(this.settings.warmupTimeoutMs);
  }

  /** Resolves once every load and validation started here has finished (overdue ones unloaded again). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.loading.values(), ...this.overdueLoads.values(), ...this.overdueValidations]);
  }

  /** Unloads inactive models beyond MAX_INACTIVE_LOADED, least recently used first. */
  private async evictInactive(): Promise<void> {
    const loaded = this.engine.listModels().map((model) => model.key);
    if (loaded.length <= MAX_INACTIVE_LOADED) return;
    const active = new Set(await this.db.models.listActiveReadyIds());
    const inactive = loaded
      .filter((id) => !active.has(id))
      .sort((a, b) => (this.lastUsed.get(a) ?? 0) - (this.lastUsed.get(b) ?? 0));
    for (const id of inactive.slice(0, Math.max(0, inactive.length - MAX_INACTIVE_LOADED))) {
      this.lastUsed.delete(id);
      await this.engine.unloadModel(id);
      this.logger.info({ modelId: id }, 'unloaded an inactive model');
    }
  }

  /** Loads every active model in the background (retrying failures) and follows activations. */
  start(): void {
    this.followActivations();
    void this.loadActiveModels();
  }

  private async loadActiveModels(): Promise<void> {
    if (this.stopped) return;
    let failed = false;
    try {
      const active = await this.db.models.listActiveReady();
      const results = await Promise.allSettled(active.map((model) => this.ensureLoaded(model)));
      results.forEach((result, index) => {
        if (result.status === 'rejected') {
          failed = true;
          this.logger.error(
            { err: result.reason, modelId: active[index]?.id },
            'could not load an active model; retrying',
          );
        }
      });
    } catch (error) {
      failed = true;
      this.logger.error({ err: error }, 'could not list the active models; retrying');
    }
    if (failed && !this.stopped) {
      this.retryTimer = setTimeout(() => void this.loadActiveModels(), this.retryDelayMs);
      this.retryTimer.unref();
      this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
    } else {
      this.retryDelayMs = RETRY_MIN_MS;
    }
  }

  /** Another process (or this one) activated a version: load it here too. */
  private followActivations(): void {
    if (!this.pubSub) return;
    const iterator = this.pubSub.subscribe('MODEL_VERSION_CHANGED')[Symbol.asyncIterator]();
    this.events = iterator;
    void (async () => {
      for (;;) {
        const next = await iterator.next().catch(() => ({ done: true as const, value: undefined }));
        if (next.done || this.stopped) return;
        if (next.value.kind !== 'ACTIVATED') continue;
        const model = await this.db.models.findById(next.value.modelId).catch(() => null);
        if (!model?.isActive) continue;
        this.ensureLoaded(model).catch((error: unknown) => {
          this.logger.error({ err: error, modelId: model.id }, 'could not load a newly activated model');
        });
      }
    })();
  }

  /**
   * Readiness: every active model is loaded and warmed up in this process. A missing one
   * (activated elsewhere, or whose load failed) is loaded in the background meanwhile.
   */
  async assertActiveModelsWarm(): Promise<void> {
    const active = await this.db.models.listActiveReady();
    const cold = active.filter((model) => !this.engine.isWarm(model.id));
    if (cold.length === 0) return;
    for (const model of cold) {
      const failure = this.loadErrors.get(model.id);
      if (!failure || Date.now() - failure.at >= RETRY_MIN_MS) this.ensureLoaded(model).catch(() => undefined);
    }
    const describe = (model: ModelVersionEntity): string => {
      const failure = this.loadErrors.get(model.id);
      return `${model.name} v${model.version} (${model.id})${failure ? `: ${failure.message}` : ''}`;
    };
    throw new Error(`active models not loaded and warmed up yet: ${cold.map(describe).join('; ')}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.events?.return?.();
    await Promise.allSettled([...this.loading.values()]);
  }
}
