// Opens a one-node model with one execution provider, in a thread of its own so that a provider
// whose native start-up fails or hangs (a GPU driver) cannot take the process with it.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { ProbeRequest, ProbeResult } from './execution-providers';

const request = workerData as ProbeRequest;

async function probe(): Promise<ProbeResult> {
  try {
    const session = await ort.InferenceSession.create(Buffer.from(request.modelBase64, 'base64'), {
      executionProviders: [request.provider],
    });
    await session.release();
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

void probe().then((result) => parentPort?.postMessage(result));
