import { Worker } from 'node:worker_threads';
import { compiledWorkerFile } from '../utils/worker-file';
import { checkExecutionProviders } from './worker-pool';
import type { ExecutionProvider } from './worker-protocol';

/** What to do when a configured provider cannot run here (INFERENCE_PROVIDER_FALLBACK). */
export type ProviderFallback = 'cpu' | 'fail';

export interface ProbeRequest {
  provider: ExecutionProvider;
  modelBase64: string;
}
export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** Whether `provider` can open a model on this machine: null if it can, else why not. */
export type ProviderProbe = (provider: ExecutionProvider) => Promise<string | null>;

export interface ProviderChoice {
  /** The providers sessions are created with, in order of preference. */
  providers: ExecutionProvider[];
  /** Configured providers that cannot run here, with the reason. */
  missing: Array<{ provider: ExecutionProvider; reason: string }>;
}

export class ProviderUnavailableError extends Error {}

/**
 * Keeps the configured providers that work here. With fallback `cpu`, a configuration left with
 * none runs on the CPU; with `fail`, any missing provider refuses the start.
 */
export function chooseExecutionProviders(
  requested: readonly ExecutionProvider[],
  missing: ProviderChoice['missing'],
  fallback: ProviderFallback,
): ProviderChoice {
  const unavailable = new Set(missing.map(({ provider }) => provider));
  if (missing.length > 0 && fallback === 'fail')
    throw new ProviderUnavailableError(`${describeMissing(missing)} (INFERENCE_PROVIDER_FALLBACK=fail)`);
  const providers = requested.filter((provider) => !unavailable.has(provider));
  return { providers: providers.length > 0 ? providers : ['cpu'], missing };
}

export function describeMissing(missing: ProviderChoice['missing']): string {
  return missing
    .map(({ provider, reason }) => `execution provider "${provider}" is not available: ${reason}`)
    .join('; ');
}

/** An Identity model of one float (71 bytes), made with onnx.helper: opening it is the cheapest real test of a provider. */
const PROBE_MODEL_BASE64 =
  'CAgSADo7ChAKAXgSAXkiCElkZW50aXR5EgVwcm9iZVoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEA0=';

/**
 * The real probe: CUDA's provider library must be installed (onnxruntime-node does not ship it),
 * and every non-CPU provider must open a model in a thread of its own within `timeoutMs`.
 */
export function onnxRuntimeProbe(timeoutMs = 30_000): ProviderProbe {
  return async (provider) => {
    if (provider === 'cpu') return null;
    try {
      checkExecutionProviders([provider]);
    } catch (error) {
      return (error as Error).message;
    }
    const worker = new Worker(compiledWorkerFile(__dirname, 'provider-probe.worker.js', 'provider probe'), {
      workerData: { provider, modelBase64: PROBE_MODEL_BASE64 } satisfies ProbeRequest,
    });
    try {
      const result = await new Promise<ProbeResult>((resolve) => {
        const timer = setTimeout(() => resolve({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
        worker.once('message', (message: ProbeResult) => {
          clearTimeout(timer);
          resolve(message);
        });
        worker.once('error', (error) => {
          clearTimeout(timer);
          resolve({ ok: false, reason: error.message });
        });
      });
      return result.ok ? null : shortReason(result.reason);
    } finally {
      await worker.terminate();
    }
  };
}

/** onnxruntime's first line without its source location and failed check ("…cc:136 … was false. Failed to …"). */
export function shortReason(message: string): string {
  const line = message.split('\n')[0]?.trim() ?? '';
  const afterCheck = /\bwas false\.\s+(.+)$/.exec(line)?.[1];
  return afterCheck ?? line.replace(/^\S+\.cc:\d+\s+/, '');
}

/** Probes each configured provider and chooses; see {@link chooseExecutionProviders}. */
export async function resolveExecutionProviders(
  requested: readonly ExecutionProvider[],
  fallback: ProviderFallback,
  probe: ProviderProbe = onnxRuntimeProbe(),
): Promise<ProviderChoice> {
  const missing: ProviderChoice['missing'] = [];
  for (const provider of requested) {
    const reason = await probe(provider);
    if (reason !== null) missing.push({ provider, reason });
  }
  return chooseExecutionProviders(requested, missing, fallback);
}
