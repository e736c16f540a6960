import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InferenceObserver } from '../inference/engine';

/** What InspectionMetrics reads at each scrape. */
export interface InspectionFigures {
  /** Requests waiting in each loaded model's queue. */
  queueLengths(): Array<{ modelVersionId: string; queued: number }>;
  /** Each loaded model and the execution provider its sessions run on. */
  loadedModels(): Array<{ modelVersionId: string; executionProvider: string }>;
  /** Images being inspected now (INSPECT_MAX_IN_FLIGHT bounds it). */
  imagesInFlight(): number;
}

const MODEL_LABEL = ['model_version_id'] as const;

/**
 * Inference per loaded model, and the admission of inspections. The only label value is the
 * version id of a model loaded in this process (the engine reports no other), and a model's
 * series are removed when it is unloaded: never more series than models loaded.
 */
export class InspectionMetrics implements InferenceObserver {
  readonly registry = new Registry();

  private readonly batchSize = new Histogram({
    name: 'inference_batch_size',
    help: 'Requests per batch sent to an inference worker, by loaded model version',
    labelNames: MODEL_LABEL,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  private readonly latency = new Histogram({
    name: 'inference_request_duration_seconds',
    help: 'Inference of one image from its submission to its result (queued and running), by loaded model version',
    labelNames: MODEL_LABEL,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly queueFullRefusals = new Counter({
    name: 'inference_queue_full_total',
    help: "Requests refused with QUEUE_FULL because the model's queue was full (INFERENCE_MAX_QUEUE_LENGTH), by loaded model version",
    labelNames: MODEL_LABEL,
    registers: [this.registry],
  });

  private readonly admissionRefusals = new Counter({
    name: 'inspection_admission_refused_total',
    help: 'inspect and inspectBatch requests refused with QUEUE_FULL before reading their images (INSPECT_MAX_IN_FLIGHT)',
    registers: [this.registry],
  });

  constructor(figures: InspectionFigures) {
    new Gauge({
      name: 'inference_queue_length',
      help: 'Requests waiting in the queue of a loaded model version',
      labelNames: MODEL_LABEL,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { modelVersionId, queued } of figures.queueLengths())
          this.set({ model_version_id: modelVersionId }, queued);
      },
    });
    new Gauge({
      name: 'inference_model_loaded',
      help: '1 for each model version loaded in this process, labelled with the execution provider it runs on',
      labelNames: [...MODEL_LABEL, 'execution_provider'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { modelVersionId, executionProvider } of figures.loadedModels())
          this.set({ model_version_id: modelVersionId, execution_provider: executionProvider }, 1);
      },
    });
    new Gauge({
      name: 'inspection_images_in_flight',
      help: 'Images being inspected in this process: read, decoded, queued or running (at most INSPECT_MAX_IN_FLIGHT)',
      registers: [this.registry],
      collect() {
        this.set(figures.imagesInFlight());
      },
    });
  }

  batchSent(modelKey: string, size: number): void {
    this.batchSize.observe({ model_version_id: modelKey }, size);
  }

  requestCompleted(modelKey: string, totalMs: number): void {
    this.latency.observe({ model_version_id: modelKey }, totalMs / 1000);
  }

  queueFull(modelKey: string): void {
    this.queueFullRefusals.inc({ model_version_id: modelKey });
  }

  modelUnloaded(modelKey: string): void {
    for (const metric of [this.batchSize, this.latency, this.queueFullRefusals])
      metric.remove({ model_version_id: modelKey });
  }

  admissionRefused(): void {
    this.admissionRefusals.inc();
  }
}

/** Process-wide Prometheus registry, served as text on GET /metrics. */
export class ServiceMetrics {
  readonly registry = new Registry();

  readonly httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly graphqlOperations = new Counter({
    name: 'graphql_operations_total',
    help: 'GraphQL operations by type, root field (one count per root field of our schema it asks for) and outcome',
    labelNames: ['type', 'root_field', 'outcome'] as const,
    registers: [this.registry],
  });

  /** `inspection`: the figures of this process's inferences and inspections, served with the rest. */
  constructor(inspection?: InspectionMetrics) {
    collectDefaultMetrics({ register: this.registry });
    for (const { name } of inspection?.registry.getMetricsAsArray() ?? []) {
      const metric = inspection?.registry.getSingleMetric(name);
      if (metric) this.registry.registerMetric(metric);
    }
  }
}
