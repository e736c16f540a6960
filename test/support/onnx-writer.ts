// Builds small ONNX files for tests: a protobuf writer over the few ONNX fields tests need
// (field numbers from onnx/onnx.proto, as in src/inference/onnx-proto.ts, which only reads).
// The one model here, `contractModel`, is the contract's tiny model (test/fixtures/inference's
// tiny.onnx: |1x1 conv(image)| and its maximum), with options to break it in one way at a time.

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

function varintBytes(value: number): number[] {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot write ${value} as a varint`);
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return bytes;
}

const key = (field: number, wireType: number): number[] => varintBytes(field * 8 + wireType);

/** One encoded field (or several, concatenated). */
export type Encoded = Buffer;

export const pb = {
  varint: (field: number, value: number): Encoded => Buffer.from([...key(field, WIRE_VARINT), ...varintBytes(value)]),
  bytes: (field: number, value: Uint8Array): Encoded =>
    Buffer.concat([Buffer.from([...key(field, WIRE_LENGTH_DELIMITED), ...varintBytes(value.length)]), value]),
  string: (field: number, value: string): Encoded => pb.bytes(field, Buffer.from(value, 'utf8')),
  /** A nested message made of the given fields. */
  message: (field: number, ...fields: Encoded[]): Encoded => pb.bytes(field, Buffer.concat(fields)),
};

const TENSOR_FLOAT = 1;
const ATTRIBUTE_INTS = 7;
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_TENSOR = 4;
const ATTRIBUTE_GRAPH = 5;

export interface ExternalData {
  location: string;
  offset?: number;
  length?: number;
}

/** TensorProto fields: float32 data in raw_data, or (`external`) a reference to another file. */
export function tensor(
  name: string,
  dims: readonly number[],
  values: readonly number[],
  external?: ExternalData,
  options: { dataLocation?: boolean; entries?: boolean } = { dataLocation: true, entries: true },
): Encoded {
  const fields = [...dims.map((dim) => pb.varint(1, dim)), pb.varint(2, TENSOR_FLOAT), pb.string(8, name)];
  if (!external) {
    const raw = Buffer.alloc(values.length * 4);
    values.forEach((value, index) => raw.writeFloatLE(value, index * 4));
    fields.push(pb.bytes(9, raw));
    return Buffer.concat(fields);
  }
  if (options.entries !== false) {
    const entries: Array<[string, string]> = [['location', external.location]];
    if (external.offset !== undefined) entries.push(['offset', String(external.offset)]);
    if (external.length !== undefined) entries.push(['length', String(external.length)]);
    for (const [entryKey, value] of entries) fields.push(pb.message(13, pb.string(1, entryKey), pb.string(2, value)));
  }
  if (options.dataLocation !== false) fields.push(pb.varint(14, 1));
  return Buffer.concat(fields);
}

export const attribute = {
  ints: (name: string, values: readonly number[]): Encoded =>
    Buffer.concat([pb.string(1, name), pb.varint(20, ATTRIBUTE_INTS), ...values.map((value) => pb.varint(8, value))]),
  int: (name: string, value: number): Encoded =>
    Buffer.concat([pb.string(1, name), pb.varint(20, ATTRIBUTE_INT), pb.varint(3, value)]),
  tensor: (name: string, value: Encoded): Encoded =>
    Buffer.concat([pb.string(1, name), pb.varint(20, ATTRIBUTE_TENSOR), pb.bytes(5, value)]),
  graph: (name: string, value: Encoded): Encoded =>
    Buffer.concat([pb.string(1, name), pb.varint(20, ATTRIBUTE_GRAPH), pb.bytes(6, value)]),
};

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attributes?: readonly Encoded[];
}

/** NodeProto fields. */
export function node(spec: NodeSpec): Encoded {
  return Buffer.concat([
    ...spec.inputs.map((input) => pb.string(1, input)),
    ...spec.outputs.map((output) => pb.string(2, output)),
    pb.string(3, spec.name ?? spec.outputs[0] ?? spec.opType),
    pb.string(4, spec.opType),
    ...(spec.attributes ?? []).map((value) => pb.bytes(5, value)),
    ...(spec.domain === undefined ? [] : [pb.string(7, spec.domain)]),
  ]);
}

/** ValueInfoProto fields of a float tensor; a string dimension is symbolic. */
export function valueInfo(name: string, dims: ReadonlyArray<number | string>): Encoded {
  const shape = dims.map((dim) => pb.message(1, typeof dim === 'number' ? pb.varint(1, dim) : pb.string(2, dim)));
  return Buffer.concat([
    pb.string(1, name),
    pb.message(2, pb.message(1, pb.varint(1, TENSOR_FLOAT), pb.message(2, ...shape))),
  ]);
}

export interface GraphSpec {
  name: string;
  nodes: readonly Encoded[];
  inputs?: readonly Encoded[];
  outputs?: readonly Encoded[];
  initializers?: readonly Encoded[];
}

/** GraphProto fields. */
export function graph(spec: GraphSpec): Encoded {
  return Buffer.concat([
    ...spec.nodes.map((value) => pb.bytes(1, value)),
    pb.string(2, spec.name),
    ...(spec.initializers ?? []).map((value) => pb.bytes(5, value)),
    ...(spec.inputs ?? []).map((value) => pb.bytes(11, value)),
    ...(spec.outputs ?? []).map((value) => pb.bytes(12, value)),
  ]);
}

/** A serialized ModelProto (IR 8) importing the given opsets (default: "" version 17). */
export function model(
  graphFields: Encoded,
  metadata: Readonly<Record<string, string>>,
  opsets: ReadonlyArray<readonly [domain: string, version: number]> = [['', 17]],
  extraFields: readonly Encoded[] = [],
): Buffer {
  return Buffer.concat([
    pb.varint(1, 8),
    pb.string(2, 'onnx-writer (tests)'),
    pb.bytes(7, graphFields),
    ...opsets.map(([domain, version]) => pb.message(8, pb.string(1, domain), pb.varint(2, version))),
    ...Object.entries(metadata).map(([metaKey, value]) => pb.message(14, pb.string(1, metaKey), pb.string(2, value))),
    ...extraFields,
  ]);
}

/** metadata_props of docs/model-contract.md for a model of the given input size. */
export function contractMetadata(inputSize: readonly [number, number]): Record<string, string> {
  return {
    format_version: '1',
    architecture: JSON.stringify({ name: 'onnx-writer' }),
    input_size: JSON.stringify(inputSize),
    mean: '[0.485, 0.456, 0.406]',
    std: '[0.229, 0.224, 0.225]',
    category: 'onnx-writer',
    mask_rate: '0.5',
    training_data: '{"images": 0}',
    score_stats: '{"count": 10, "min": 0.5, "max": 1.5, "mean": 1.0, "std": 0.25, "p50": 1.0, "p95": 1.4, "p99": 1.45}',
    map_stats: '{"min": 0.0, "max": 1.5, "p99": 1.2}',
    proposed_threshold: '1.5',
  };
}

export interface ContractModelOptions {
  /** [height, width] of the graph (and, unless `metadataInputSize` says otherwise, the metadata). */
  size?: readonly [number, number];
  metadataInputSize?: readonly [number, number];
  /** The conv bias (one float) read from another file instead of the model. */
  externalBias?: ExternalData;
  /** The op computing the map from the projection, instead of Abs in the default domain. */
  mapOp?: { opType: string; domain: string };
}

/**
 * The contract's tiny model: `anomaly_map = |1x1 conv(image) + b|`, `score = max(anomaly_map)`,
 * valid in onnxruntime unless an option breaks it.
 */
export function contractModel(options: ContractModelOptions = {}): Buffer {
  const [height, width] = options.size ?? [8, 12];
  const mapOp = options.mapOp ?? { opType: 'Abs', domain: '' };
  const nodes = [
    node({
      opType: 'Conv',
      inputs: ['image', 'w', 'b'],
      outputs: ['projected'],
      attributes: [attribute.ints('kernel_shape', [1, 1])],
    }),
    node({ opType: mapOp.opType, domain: mapOp.domain || undefined, inputs: ['projected'], outputs: ['anomaly_map'] }),
    node({
      opType: 'ReduceMax',
      inputs: ['anomaly_map'],
      outputs: ['score'],
      attributes: [attribute.ints('axes', [1, 2, 3]), attribute.int('keepdims', 0)],
    }),
  ];
  const graphFields = graph({
    name: 'contract',
    nodes,
    inputs: [valueInfo('image', ['N', 3, height, width])],
    outputs: [valueInfo('anomaly_map', ['N', 1, height, width]), valueInfo('score', ['N'])],
    initializers: [tensor('w', [1, 3, 1, 1], [0.5, -0.25, 1]), tensor('b', [1], [0.1], options.externalBias)],
  });
  const opsets: Array<[string, number]> = [['', 17]];
  if (mapOp.domain !== '' && mapOp.domain !== 'ai.onnx') opsets.push([mapOp.domain, 1]);
  return model(graphFields, contractMetadata(options.metadataInputSize ?? [height, width]), opsets);
}
