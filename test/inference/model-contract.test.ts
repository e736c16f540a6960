import { readFileSync } from 'node:fs';
import { InvalidModelError } from '../../src/inference/errors';
import {
  checkSignature,
  describeOnnxFile,
  parseModelMetadata,
  signatureProblems,
  type SessionSignature,
} from '../../src/inference/model-contract';
import { OnnxParseError, readOnnxModelHeader } from '../../src/inference/onnx-proto';
import { fixture } from './helpers';

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
  it('reads ir_version, opsets and metadata_props without decoding the graph', () => {
    const header = readOnnxModelHeader(readFileSync(fixture('slow.onnx')));
    expect(header.irVersion).toBe(8);
    expect(header.producerName).toBe('inference-test-fixtures');
    expect(header.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(header.hasGraph).toBe(true);
    expect(JSON.parse(header.metadataProps.input_size)).toEqual([64, 64]);
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

  it('refuses bytes that are not ONNX', () => {
    expect(problemsOf(() => describeOnnxFile(new TextEncoder().encode('{"not": "onnx"}')))).toEqual([
      expect.stringMatching(/^not an ONNX model \(/),
    ]);
  });
});
