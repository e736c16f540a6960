// INFERENCE_EXECUTION_PROVIDERS on a machine without the GPU providers (this one: no CUDA provider
// library, no WebGPU adapter): one line names what is missing, then the service runs on the CPU or
// refuses to start (INFERENCE_PROVIDER_FALLBACK), and reports where its models run.
import {
  chooseExecutionProviders,
  ProviderUnavailableError,
  resolveExecutionProviders,
  shortReason,
} from '../../src/inference/execution-providers';
import { GraphQLTestClient } from '../support/graphql-client';
import { startTestServer } from '../support/test-server';

describe('chooseExecutionProviders', () => {
  const webgpuMissing = [{ provider: 'webgpu' as const, reason: 'No supported adapters' }];

  it('drops what cannot run and keeps the order of the rest; nothing left runs on the CPU', () => {
    expect(chooseExecutionProviders(['webgpu', 'cpu'], webgpuMissing, 'cpu').providers).toEqual(['cpu']);
    expect(chooseExecutionProviders(['cuda', 'webgpu'], webgpuMissing, 'cpu').providers).toEqual(['cuda']);
    expect(chooseExecutionProviders(['webgpu'], webgpuMissing, 'cpu').providers).toEqual(['cpu']);
    expect(chooseExecutionProviders(['cuda', 'cpu'], [], 'fail').providers).toEqual(['cuda', 'cpu']);
  });

  it('with fallback fail, any missing provider refuses, naming it and why', () => {
    expect(() => chooseExecutionProviders(['webgpu', 'cpu'], webgpuMissing, 'fail')).toThrow(ProviderUnavailableError);
    expect(() => chooseExecutionProviders(['webgpu', 'cpu'], webgpuMissing, 'fail')).toThrow(
      'execution provider "webgpu" is not available: No supported adapters (INFERENCE_PROVIDER_FALLBACK=fail)',
    );
  });

  it("shortens onnxruntime's messages to what failed", () => {
    expect(
      shortReason(
        '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 f() x == y was false. Failed to get a WebGPU adapter: No supported adapters\nmore',
      ),
    ).toBe('Failed to get a WebGPU adapter: No supported adapters');
    expect(shortReason('/a/b.cc:12 something broke')).toBe('something broke');
  });
});

test('the real probe on this machine: the CPU works, CUDA is not installed, WebGPU has no adapter (or works)', async () => {
  const { providers, missing } = await resolveExecutionProviders(['cuda', 'webgpu', 'cpu'], 'cpu');
  expect(providers).toContain('cpu');
  expect(missing.find((entry) => entry.provider === 'cuda')?.reason).toMatch(/not installed/);
  const webgpu = missing.find((entry) => entry.provider === 'webgpu');
  // A machine with a working WebGPU adapter keeps it; then it comes first.
  if (webgpu) expect(webgpu.reason.length).toBeGreaterThan(0);
  else expect(providers[0]).toBe('webgpu');
});

describe('the service', () => {
  test('INFERENCE_EXECUTION_PROVIDERS=cuda with fallback cpu: one line names it, models run and report cpu', async () => {
    const server = await startTestServer({ env: { INFERENCE_EXECUTION_PROVIDERS: 'cuda', SEED_DEMO: 'true' } });
    try {
      const lines = server.output().split('\n');
      const named = lines.filter((line) => line.includes('execution provider \\"cuda\\" is not available'));
      expect(named).toHaveLength(1);
      expect(named[0]).toContain('inference runs on cpu');

      const admin = new GraphQLTestClient(server.url, server.adminKey);
      const { health, datasets } = await admin.data<{
        health: { executionProviders: string[] };
        datasets: {
          edges: Array<{
            node: { categories: Array<{ activeModel: { id: string; executionProvider: string | null } | null }> };
          }>;
        };
      }>(
        '{ health { executionProviders } datasets(first: 5) { edges { node { categories { activeModel { id executionProvider } } } } } }',
      );
      expect(health.executionProviders).toEqual(['cpu']);
      const active = datasets.edges
        .flatMap(({ node }) => node.categories)
        .find((category) => category.activeModel)?.activeModel;
      expect(active?.executionProvider).toBe('cpu');
      const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
      expect(metrics).toContain(`inference_model_loaded{model_version_id="${active?.id}",execution_provider="cpu"} 1`);
    } finally {
      await server.stop();
    }
  });

  test('with INFERENCE_PROVIDER_FALLBACK=fail the start is refused in one line, exit code 1', async () => {
    await expect(
      startTestServer({ env: { INFERENCE_EXECUTION_PROVIDERS: 'cuda,cpu', INFERENCE_PROVIDER_FALLBACK: 'fail' } }),
    ).rejects.toThrow(
      /exited \(code 1[\s\S]*execution provider \\?"cuda\\?" is not available[\s\S]*INFERENCE_PROVIDER_FALLBACK=fail/,
    );
  });
});
