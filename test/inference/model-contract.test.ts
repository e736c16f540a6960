import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidModelError } from '../../src/inference/errors';
import {
  checkSignature,
  describeOnnxFile,
  parseModelMetadata,
  signatureProblems,
  type SessionSignature,
} from '../../src/inference/model-contract';
import { OnnxParseError, readOnnxModelHeader } from '../../src/inference/onnx-proto';
import {
  attribute,
  contractMetadata,
  contractModel,
  graph,
  model,
  node,
  pb,
  tensor,
  valueInfo,
  type Encoded,
} from '../support/onnx-writer';
import { fixture, REPOSITORY_ROOT } from './helpers';

const VALID_PROPS: Record<string, string> = {
  format_version: '1',
  architecture: '{"name":"ast-mfr"}',
  input_size: '[256, 192]',
  mean: '[0.485, 0.456, 0.406]',
  std: '[0.229, 0.224, 0.225]',
  category: 'carpet',
  mask_rate: '0.5',
  training_data: '{"images": 200}',
  score_stats: '{"count": 20, "min": 0.1, "max": 0.9, "mean": 0.4, "std": 0.1, "p50": 0.4, "p95": 0.7, "p99": 0.85}',
  map_stats: '{"min": 0.0, "max": 1.2, "p99": 0.6}',
  proposed_threshold: '0.95',
};

function problemsOf(action: () => unknown): readonly string[] {
  try {
    action();
  } catch (error) {
    if (error instanceof InvalidModelError) return error.problems;
    throw error;
  }
  throw new Error('expected an InvalidModelError');
}

const conforming: SessionSignature = {
  inputs: [{ name: 'image', isTensor: true, type: 'float32', shape: ['N', 3, 256, 192] }],
  outputs: [
    { name: 'anomaly_map', isTensor: true, type: 'float32', shape: ['N', 1, 256, 192] },
    { name: 'score', isTensor: true, type: 'float32', shape: ['N'] },
  ],
};

describe('parseModelMetadata', () => {
  it('types every contract key', () => {
    const metadata = parseModelMetadata({ ...VALID_PROPS, extra: 'kept' });
    expect(metadata.inputSize).toEqual([256, 192]);
    expect(metadata.mean).toEqual([0.485, 0.456, 0.406]);
    expect(metadata.scoreStats.p99).toBe(0.85);
    expect(metadata.mapStats).toEqual({ min: 0, max: 1.2, p99: 0.6 });
    expect(metadata.proposedThreshold).toBe(0.95);
    expect(metadata.maskRate).toBe(0.5);
    expect(metadata.category).toBe('carpet');
    expect(metadata.architecture).toEqual({ name: 'ast-mfr' });
    expect(metadata.props.extra).toBe('kept');
  });

  it('lists every problem at once, with the key it concerns', () => {
    const { map_stats: _mapStats, ...withoutMapStats } = VALID_PROPS;
    const problems = problemsOf(() =>
      parseModelMetadata({
        ...withoutMapStats,
        format_version: '2',
        input_size: '[256]',
        std: '[0.2, 0, 0.2]',
        proposed_threshold: 'nan',
        score_stats: '{oops',
      }),
    );
    expect(problems).toEqual([
      'metadata keys missing: map_stats',
      expect.stringContaining('"format_version" is "2"'),
      expect.stringContaining('metadata "input_size" is invalid'),
      expect.stringContaining('metadata "std" is invalid'),
      expect.stringContaining('metadata "score_stats" is not JSON'),
      expect.stringContaining('metadata "proposed_threshold" is not a finite number'),
    ]);
  });

  it('refuses statistics whose minimum exceeds the maximum', () => {
    const problems = problemsOf(() =>
      parseModelMetadata({ ...VALID_PROPS, map_stats: '{"min": 2, "max": 1, "p99": 1}' }),
    );
    expect(problems).toEqual([expect.stringContaining('min must not exceed max')]);
  });

  it('carries the INVALID_MODEL code for the GraphQL layer', () => {
    expect(() => parseModelMetadata({})).toThrow(expect.objectContaining({ code: 'INVALID_MODEL' }));
  });
});

describe('signatureProblems / checkSignature', () => {
  it('accepts the contract signature', () => {
    expect(signatureProblems(conforming, [256, 192])).toEqual([]);
    expect(() => checkSignature(conforming, [256, 192])).not.toThrow();
  });

  it('names wrong inputs, dtypes, ranks, sizes and a fixed batch dimension', () => {
    const signature: SessionSignature = {
      inputs: [{ name: 'image', isTensor: true, type: 'float16', shape: [1, 3, 256, 256] }],
      outputs: [
        { name: 'anomaly_map', isTensor: true, type: 'float32', shape: ['N', 256, 192] },
        { name: 'score', isTensor: true, type: 'float32', shape: ['N'] },
        { name: 'features', isTensor: true, type: 'float32', shape: ['N', 64] },
      ],
    };
    expect(signatureProblems(signature, [256, 192])).toEqual([
      'unexpected outputs ["features"]: the outputs must be exactly ["anomaly_map","score"]',
      'input "image" is float16, expected float32',
      'input "image" has a fixed batch dimension 1, expected a dynamic one (N)',
      'input "image" has width 256, expected 192',
      'output "anomaly_map" has rank 3 [N, 256, 192], expected rank 4 [N, 1, 256, 192]',
    ]);
  });

  it('reports missing outputs and unexpected inputs', () => {
    const signature: SessionSignature = {
      inputs: [{ name: 'input', isTensor: true, type: 'float32', shape: ['N', 3, 256, 192] }],
      outputs: [{ name: 'anomaly_map', isTensor: true, type: 'float32', shape: ['N', 1, 256, 192] }],
    };
    expect(() => checkSignature(signature, [256, 192])).toThrow(
      /unexpected inputs \["input"\].*input "image" .* is missing.*output "score" .* is missing/,
    );
  });
});

describe('readOnnxModelHeader (minimal protobuf reader)', () => {
  it("reads ir_version, opsets and metadata_props, and the graph's inputs and op domains", () => {
    const header = readOnnxModelHeader(readFileSync(fixture('slow.onnx')));
    expect(header.irVersion).toBe(8);
    expect(header.producerName).toBe('inference-test-fixtures');
    expect(header.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(header.hasGraph).toBe(true);
    expect(JSON.parse(header.metadataProps.input_size)).toEqual([64, 64]);
    expect(header.graph.inputs).toEqual([{ name: 'image', dims: ['N', 3, 64, 64] }]);
    expect(header.graph.initializerNames).toEqual(['stem', 'shared', 'head']);
    expect(new Set(header.graph.nodes.map((each) => each.opType))).toEqual(
      new Set(['Conv', 'Relu', 'Abs', 'ReduceMax']),
    );
    expect(header.graph.nodes.every((each) => each.domain === '' && each.scope === 'graph "slow"')).toBe(true);
    expect(header.graph.externalTensors).toEqual([]);
  });

  it('finds tensors with external data wherever they are: initializers, node attributes, subgraphs, functions', () => {
    const external = { location: 'package.json', offset: 0, length: 4 };
    const constant = (name: string, value: Encoded): Encoded =>
      node({ opType: 'Constant', inputs: [], outputs: [name], attributes: [attribute.tensor('value', value)] });
    const thenBranch = graph({
      name: 'then',
      nodes: [constant('deep', tensor('deep_value', [1], [0], external, { dataLocation: false, entries: true }))],
    });
    const main = graph({
      name: 'main',
      nodes: [
        constant('c', tensor('constant_value', [1], [0], external, { dataLocation: true, entries: false })),
        node({
          opType: 'If',
          name: 'branch',
          inputs: ['cond'],
          outputs: ['out'],
          attributes: [attribute.graph('then_branch', thenBranch)],
        }),
      ],
      initializers: [tensor('weights', [1], [0], external), tensor('inline', [1], [0.5])],
      inputs: [valueInfo('image', ['N', 3, 8, 8])],
    });
    const localFunction = pb.message(
      25,
      pb.string(1, 'helper'),
      pb.bytes(7, constant('f', tensor('function_value', [1], [0], { location: 'secret.bin' }))),
      pb.string(10, 'local'),
    );
    const header = readOnnxModelHeader(model(main, {}, [['', 17]], [localFunction]));
    expect(header.graph.externalTensors).toEqual([
      { name: 'weights', scope: 'graph "main"', location: 'package.json' },
      { name: 'constant_value', scope: 'attribute "value" of node "c" (Constant) in graph "main"', location: null },
      {
        name: 'deep_value',
        scope:
          'attribute "value" of node "deep" (Constant) in subgraph "then_branch" of node "branch" (If) in graph "main"',
        location: 'package.json',
      },
      {
        name: 'function_value',
        scope: 'attribute "value" of node "f" (Constant) in function "local:helper"',
        location: 'secret.bin',
      },
    ]);
    expect(header.graph.nodes.map((each) => [each.opType, each.scope])).toEqual([
      ['Constant', 'graph "main"'],
      ['If', 'graph "main"'],
      ['Constant', 'subgraph "then_branch" of node "branch" (If) in graph "main"'],
      ['Constant', 'function "local:helper"'],
    ]);
  });

  it('refuses subgraphs nested without end and files of hundreds of thousands of empty nodes', () => {
    let nested = graph({ name: 'innermost', nodes: [] });
    for (let depth = 0; depth < 40; depth++)
      nested = graph({
        name: `level${depth}`,
        nodes: [
          node({ opType: 'If', inputs: ['c'], outputs: ['o'], attributes: [attribute.graph('then_branch', nested)] }),
        ],
      });
    expect(() => readOnnxModelHeader(model(nested, {}))).toThrow(/nested more than 32 deep/);

    const emptyNodes = Buffer.alloc(2 * 200_000);
    for (let i = 0; i < emptyNodes.length; i += 2) emptyNodes[i] = 0x0a; // field 1 (node), length 0
    expect(() => readOnnxModelHeader(model(emptyNodes, {}))).toThrow(/more than 100000 nodes/);
  });

  it.each([
    ['empty bytes', new Uint8Array(0), /empty/],
    ['text', new TextEncoder().encode('definitely not a model'), /wire type|ir_version|past the end|graph/],
    ['a truncated model', readFileSync(fixture('tiny.onnx')).subarray(0, 200), /past the end|truncated/],
    ['a PNG', readFileSync(fixture('images/palette.png')), /./],
  ])('refuses %s', (_name, bytes, message) => {
    expect(() => readOnnxModelHeader(bytes)).toThrow(OnnxParseError);
    expect(() => readOnnxModelHeader(bytes)).toThrow(message);
  });
});

describe('describeOnnxFile', () => {
  it('returns the typed metadata of a contract file', () => {
    expect(describeOnnxFile(readFileSync(fixture('tiny.onnx'))).metadata.inputSize).toEqual([8, 12]);
  });

  it('refuses a file without metadata, listing the missing keys', () => {
    expect(problemsOf(() => describeOnnxFile(readFileSync(fixture('no-metadata.onnx'))))).toEqual([
      'metadata keys missing: format_version, architecture, input_size, mean, std, category, mask_rate, training_data, score_stats, map_stats, proposed_threshold',
    ]);
  });

  it('accepts the tiny model written by the test writer, the demo model and the fixtures', () => {
    expect(describeOnnxFile(contractModel(), { maxInputSize: 4096 }).metadata.inputSize).toEqual([8, 12]);
    expect(
      describeOnnxFile(readFileSync(path.join(REPOSITORY_ROOT, 'models', 'demo', 'model.onnx')), { maxInputSize: 4096 })
        .metadata.inputSize,
    ).toEqual([128, 128]);
    for (const name of ['tiny.onnx', 'slow.onnx', 'wrong-signature.onnx', 'unknown-op.onnx'])
      expect(() => describeOnnxFile(readFileSync(fixture(name)), { maxInputSize: 64 })).not.toThrow();
  });

  it('refuses a tensor whose data lives in another file, naming the tensor and the file', () => {
    const bytes = contractModel({ externalBias: { location: 'package.json', offset: 0, length: 4 } });
    expect(problemsOf(() => describeOnnxFile(bytes))).toEqual([
      'tensors keep their data in external files, models must be self-contained: tensor "b" in graph "contract" (location "package.json")',
    ]);
  });

  it('refuses nodes of a non-standard op domain, one problem per domain; ai.onnx and ai.onnx.ml are standard', () => {
    expect(
      problemsOf(() => describeOnnxFile(contractModel({ mapOp: { opType: 'Gelu', domain: 'com.microsoft' } }))),
    ).toEqual([
      'op domain "com.microsoft" is not a standard ONNX domain (only "", "ai.onnx", "ai.onnx.ml" are accepted): Gelu (node "anomaly_map" in graph "contract")',
    ]);
    expect(() => describeOnnxFile(contractModel({ mapOp: { opType: 'Abs', domain: 'ai.onnx' } }))).not.toThrow();
    expect(() =>
      describeOnnxFile(contractModel({ mapOp: { opType: 'Normalizer', domain: 'ai.onnx.ml' } })),
    ).not.toThrow();
  });

  it('refuses declared input sizes above maxInputSize, in the graph and in the metadata', () => {
    const big = contractModel({ size: [4097, 12] });
    expect(() => describeOnnxFile(big)).not.toThrow();
    expect(() => describeOnnxFile(big, { maxInputSize: 4097 })).not.toThrow();
    expect(problemsOf(() => describeOnnxFile(big, { maxInputSize: 4096 }))).toEqual([
      'metadata "input_size" is [4097,12], above the limit of 4096 (MODEL_MAX_INPUT_SIZE)',
      'input "image" declares height 4097, above the limit of 4096 (MODEL_MAX_INPUT_SIZE)',
    ]);
    const dynamic = contractModel({ size: [8, 12], metadataInputSize: [8, 100_000] });
    expect(problemsOf(() => describeOnnxFile(dynamic, { maxInputSize: 4096 }))).toEqual([
      'metadata "input_size" is [8,100000], above the limit of 4096 (MODEL_MAX_INPUT_SIZE)',
    ]);
    const wide = model(
      graph({ name: 'wide', nodes: [], inputs: [valueInfo('image', ['N', 3, 5000, 6000])] }),
      contractMetadata([8, 12]),
    );
    expect(problemsOf(() => describeOnnxFile(wide, { maxInputSize: 4096 }))).toEqual([
      'input "image" declares height 5000 and width 6000, above the limit of 4096 (MODEL_MAX_INPUT_SIZE)',
    ]);
  });

  it('refuses bytes that are not ONNX', () => {
    expect(problemsOf(() => describeOnnxFile(new TextEncoder().encode('{"not": "onnx"}')))).toEqual([
      expect.stringMatching(/^not an ONNX model \(/),
    ]);
  });
});
