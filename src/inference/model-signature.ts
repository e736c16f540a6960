/**
 * The graph signature of docs/model-contract.md and its check against what onnxruntime
 * reports for a loaded session. Dependency-free: the inference worker imports it.
 */

export const CONTRACT_INPUT = 'image';
export const CONTRACT_ANOMALY_MAP_OUTPUT = 'anomaly_map';
export const CONTRACT_SCORE_OUTPUT = 'score';
export const CONTRACT_OPSET = 17;
export const CONTRACT_FORMAT_VERSION = '1';

/** One input or output as onnxruntime-node's `session.inputMetadata` / `outputMetadata` describe it. */
export type ValueSignature =
  | { readonly name: string; readonly isTensor: false }
  | {
      readonly name: string;
      readonly isTensor: true;
      readonly type: string;
      readonly shape: ReadonlyArray<number | string>;
    };

export interface SessionSignature {
  readonly inputs: readonly ValueSignature[];
  readonly outputs: readonly ValueSignature[];
}

type ExpectedDim =
  { readonly kind: 'batch' } | { readonly kind: 'size'; readonly value: number; readonly label: string };

function describeShape(shape: ReadonlyArray<number | string>): string {
  return `[${shape.map((dim) => (typeof dim === 'string' ? dim || '?' : dim < 0 ? '?' : String(dim))).join(', ')}]`;
}

function valueProblems(
  kind: 'input' | 'output',
  value: ValueSignature | undefined,
  name: string,
  expected: readonly ExpectedDim[],
): string[] {
  const expectedText = `[${expected.map((dim) => (dim.kind === 'batch' ? 'N' : dim.value)).join(', ')}]`;
  if (value === undefined) return [`${kind} "${name}" (float32 ${expectedText}) is missing`];
  if (!value.isTensor) return [`${kind} "${name}" is not a tensor`];
  const problems: string[] = [];
  if (value.type !== 'float32') problems.push(`${kind} "${name}" is ${value.type}, expected float32`);
  if (value.shape.length !== expected.length) {
    problems.push(
      `${kind} "${name}" has rank ${value.shape.length} ${describeShape(value.shape)}, expected rank ${expected.length} ${expectedText}`,
    );
    return problems;
  }
  expected.forEach((dim, axis) => {
    const actual = value.shape[axis];
    if (dim.kind === 'batch') {
      // A symbolic name or an unknown (-1) dimension is dynamic; a fixed number is not.
      if (typeof actual === 'number' && actual >= 0) {
        problems.push(`${kind} "${name}" has a fixed batch dimension ${actual}, expected a dynamic one (N)`);
      }
    } else if (actual !== dim.value) {
      problems.push(
        `${kind} "${name}" has ${dim.label} ${typeof actual === 'string' ? `"${actual}"` : actual}, expected ${dim.value}`,
      );
    }
  });
  return problems;
}

/**
 * Everything in a session's signature that departs from the contract: exactly one input
 * `image` float32 [N, 3, H, W] and exactly the outputs `anomaly_map` float32 [N, 1, H, W]
 * and `score` float32 [N], with H×W the metadata's input size. Empty when it conforms.
 */
export function signatureProblems(
  signature: SessionSignature,
  inputSize: readonly [height: number, width: number],
): string[] {
  const [height, width] = inputSize;
  const problems: string[] = [];
  const inputNames = signature.inputs.map((value) => value.name);
  const outputNames = signature.outputs.map((value) => value.name);
  const unexpectedInputs = inputNames.filter((name) => name !== CONTRACT_INPUT);
  if (unexpectedInputs.length > 0)
    problems.push(`unexpected inputs ${JSON.stringify(unexpectedInputs)}: the only input must be "${CONTRACT_INPUT}"`);
  const expectedOutputs: string[] = [CONTRACT_ANOMALY_MAP_OUTPUT, CONTRACT_SCORE_OUTPUT];
  const unexpectedOutputs = outputNames.filter((name) => !expectedOutputs.includes(name));
  if (unexpectedOutputs.length > 0)
    problems.push(
      `unexpected outputs ${JSON.stringify(unexpectedOutputs)}: the outputs must be exactly ${JSON.stringify(expectedOutputs)}`,
    );

  const find = (values: readonly ValueSignature[], name: string): ValueSignature | undefined =>
    values.find((value) => value.name === name);
  const spatial = (dims: number, label: string): ExpectedDim[] => [
    { kind: 'batch' },
    { kind: 'size', value: dims, label },
    { kind: 'size', value: height, label: 'height' },
    { kind: 'size', value: width, label: 'width' },
  ];
  problems.push(
    ...valueProblems('input', find(signature.inputs, CONTRACT_INPUT), CONTRACT_INPUT, spatial(3, 'channels')),
  );
  problems.push(
    ...valueProblems(
      'output',
      find(signature.outputs, CONTRACT_ANOMALY_MAP_OUTPUT),
      CONTRACT_ANOMALY_MAP_OUTPUT,
      spatial(1, 'channels'),
    ),
  );
  problems.push(
    ...valueProblems('output', find(signature.outputs, CONTRACT_SCORE_OUTPUT), CONTRACT_SCORE_OUTPUT, [
      { kind: 'batch' },
    ]),
  );
  return problems;
}
