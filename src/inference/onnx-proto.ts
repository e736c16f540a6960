/**
 * Reads what the model contract needs from a serialized ONNX `ModelProto` before onnxruntime
 * sees the file: the top-level fields onnxruntime-node does not expose (`metadata_props`,
 * opsets), and a walk of the graph (every subgraph, model-local function and training graph
 * included) for the graph's inputs, each node's op domain and every tensor that keeps its data
 * in an external file. Tensor data itself (nearly all of the bytes) is skipped by its length
 * prefix, never decoded.
 *
 * A hand-written reader rather than protobufjs: protobufjs is only a transitive dependency
 * here, and the job is a few hundred lines of wire-format walking over known field numbers.
 * A singular message field that occurs more than once is merged by protobuf parsers; walking
 * every occurrence sees everything the merged message holds.
 *
 * Field numbers from onnx/onnx.proto:
 * - ModelProto { ir_version = 1; producer_name = 2; producer_version = 3; graph = 7;
 *   opset_import = 8; metadata_props = 14; training_info = 20; functions = 25 }
 * - OperatorSetIdProto { domain = 1; version = 2 }, StringStringEntryProto { key = 1; value = 2 }
 * - GraphProto { node = 1; name = 2; initializer = 5; input = 11; sparse_initializer = 15 }
 * - NodeProto { name = 3; op_type = 4; attribute = 5; domain = 7 }
 * - AttributeProto { name = 1; t = 5; g = 6; tensors = 10; graphs = 11; sparse_tensor = 22;
 *   sparse_tensors = 23 }
 * - TensorProto { name = 8; external_data = 13; data_location = 14 (EXTERNAL = 1) },
 *   SparseTensorProto { values = 1; indices = 2 }
 * - ValueInfoProto { name = 1; type = 2 }, TypeProto { tensor_type = 1 },
 *   TypeProto.Tensor { shape = 2 }, TensorShapeProto { dim = 1 },
 *   Dimension { dim_value = 1; dim_param = 2 }
 * - TrainingInfoProto { initialization = 1; algorithm = 2 }
 * - FunctionProto { name = 1; node = 7; attribute_proto = 11; domain = 10 }
 */

export interface OpsetImport {
  /** "" (or "ai.onnx") is the default operator set. */
  readonly domain: string;
  readonly version: number;
}

/** A dimension as declared: a fixed size, a symbolic name, or null when neither is given. */
export type OnnxDimension = number | string | null;

export interface OnnxValueInfo {
  readonly name: string;
  /** The declared shape of a tensor; null for a non-tensor or a tensor without a shape. */
  readonly dims: readonly OnnxDimension[] | null;
}

export interface OnnxNodeInfo {
  readonly name: string;
  readonly opType: string;
  /** As written in the file: "" is the default domain (ai.onnx). */
  readonly domain: string;
  /** Where the node sits, e.g. `graph "main"` or `subgraph "body" of node "loop" in graph "main"`. */
  readonly scope: string;
}

/** A tensor whose data lives outside the file (`data_location: EXTERNAL` or `external_data` entries). */
export interface OnnxExternalTensor {
  readonly name: string;
  readonly scope: string;
  /** The `location` entry of `external_data` (a path onnxruntime would read), if any. */
  readonly location: string | null;
}

/** What the graphs of a model contain, as far as the contract checks need it. */
export interface OnnxGraphContents {
  /** The main graph's inputs (initializers listed as inputs included). */
  readonly inputs: readonly OnnxValueInfo[];
  /** Names of the main graph's initializers. */
  readonly initializerNames: readonly string[];
  /** Every node of every graph, subgraph, model-local function and training graph. */
  readonly nodes: readonly OnnxNodeInfo[];
  readonly externalTensors: readonly OnnxExternalTensor[];
}

export interface OnnxModelHeader {
  readonly irVersion: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly opsetImports: readonly OpsetImport[];
  readonly metadataProps: Readonly<Record<string, string>>;
  readonly hasGraph: boolean;
  readonly graph: OnnxGraphContents;
}

export class OnnxParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxParseError';
  }
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextDecoder('utf-8', { fatal: true });

class WireReader {
  position: number;

  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.position = start;
  }

  get done(): boolean {
    return this.position >= this.end;
  }

  /** Varints beyond 2^53 lose precision; no field read here can legitimately be that large. */
  varint(): number {
    let result = 0;
    let multiplier = 1;
    for (let i = 0; i < 10; i++) {
      if (this.position >= this.end) throw new OnnxParseError(`truncated varint at byte ${this.position}`);
      const byte = this.bytes[this.position++];
      result += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return result;
      multiplier *= 128;
    }
    throw new OnnxParseError(`varint longer than 10 bytes at byte ${this.position}`);
  }

  tag(): { field: number; wireType: number } {
    const at = this.position;
    const key = this.varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new OnnxParseError(`field number 0 at byte ${at}`);
    return { field, wireType };
  }

  /** Bounds of a length-delimited value; advances past it. */
  span(): { start: number; end: number } {
    const length = this.varint();
    const start = this.position;
    const end = start + length;
    if (end > this.end) throw new OnnxParseError(`length ${length} at byte ${start} runs past the end of its message`);
    this.position = end;
    return { start, end };
  }

  string(): string {
    const { start, end } = this.span();
    try {
      return utf8.decode(this.bytes.subarray(start, end));
    } catch {
      throw new OnnxParseError(`invalid UTF-8 in a string at byte ${start}`);
    }
  }

  sub(): WireReader {
    const { start, end } = this.span();
    return new WireReader(this.bytes, start, end);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.span();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        // Groups (3, 4) are deprecated and never used by ONNX; 6 and 7 do not exist.
        throw new OnnxParseError(`unsupported wire type ${wireType} at byte ${this.position}`);
    }
  }

  private advance(count: number): void {
    if (this.position + count > this.end)
      throw new OnnxParseError(`truncated fixed-width value at byte ${this.position}`);
    this.position += count;
  }
}

function expectWireType(field: string, actual: number, expected: number): void {
  if (actual !== expected) throw new OnnxParseError(`${field} has wire type ${actual}, expected ${expected}`);
}

function readOpsetImport(reader: WireReader): OpsetImport {
  let domain = '';
  let version = 0;
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === 1) {
      expectWireType('OperatorSetIdProto.domain', wireType, WIRE_LENGTH_DELIMITED);
      domain = reader.string();
    } else if (field === 2) {
      expectWireType('OperatorSetIdProto.version', wireType, WIRE_VARINT);
      version = reader.varint();
    } else reader.skip(wireType);
  }
  return { domain, version };
}

function readStringEntry(reader: WireReader): { key: string; value: string } {
  let key = '';
  let value = '';
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === 1 || field === 2) {
      expectWireType('StringStringEntryProto', wireType, WIRE_LENGTH_DELIMITED);
      if (field === 1) key = reader.string();
      else value = reader.string();
    } else reader.skip(wireType);
  }
  return { key, value };
}

/** Subgraphs (bodies of If, Loop, Scan) nested deeper than this are refused rather than walked. */
const MAX_GRAPH_DEPTH = 32;
/**
 * More nodes, tensors or graph inputs than this are refused: the walk keeps a record of each,
 * and a file of millions of empty nodes must not exhaust memory (real models: a few thousand).
 */
const MAX_ITEMS = 100_000;
/** TensorProto.DataLocation.EXTERNAL */
const DATA_LOCATION_EXTERNAL = 1;

function readString(reader: WireReader, field: string, wireType: number): string {
  expectWireType(field, wireType, WIRE_LENGTH_DELIMITED);
  return reader.string();
}

function readMessage(reader: WireReader, field: string, wireType: number): WireReader {
  expectWireType(field, wireType, WIRE_LENGTH_DELIMITED);
  return reader.sub();
}

/** The declared dimensions of a TypeProto's tensor_type, or null when it declares none. */
function readTensorTypeDims(type: WireReader): OnnxDimension[] | null {
  let dims: OnnxDimension[] | null = null;
  while (!type.done) {
    const { field, wireType } = type.tag();
    if (field !== 1) {
      type.skip(wireType);
      continue;
    }
    const tensorType = readMessage(type, 'TypeProto.tensor_type', wireType);
    while (!tensorType.done) {
      const tensorField = tensorType.tag();
      if (tensorField.field !== 2) {
        tensorType.skip(tensorField.wireType);
        continue;
      }
      const shape = readMessage(tensorType, 'TypeProto.Tensor.shape', tensorField.wireType);
      dims ??= [];
      while (!shape.done) {
        const shapeField = shape.tag();
        if (shapeField.field !== 1) {
          shape.skip(shapeField.wireType);
          continue;
        }
        const dimension = readMessage(shape, 'TensorShapeProto.dim', shapeField.wireType);
        let value: OnnxDimension = null;
        while (!dimension.done) {
          const dimField = dimension.tag();
          if (dimField.field === 1) {
            expectWireType('Dimension.dim_value', dimField.wireType, WIRE_VARINT);
            value = dimension.varint();
          } else if (dimField.field === 2) value = readString(dimension, 'Dimension.dim_param', dimField.wireType);
          else dimension.skip(dimField.wireType);
        }
        dims.push(value);
      }
    }
  }
  return dims;
}

function readValueInfo(reader: WireReader): OnnxValueInfo {
  let name = '';
  let dims: OnnxDimension[] | null = null;
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === 1) name = readString(reader, 'ValueInfoProto.name', wireType);
    else if (field === 2) {
      const declared = readTensorTypeDims(readMessage(reader, 'ValueInfoProto.type', wireType));
      if (declared !== null) dims = [...(dims ?? []), ...declared];
    } else reader.skip(wireType);
  }
  return { name, dims };
}

/** Walks graphs, nodes, attributes and tensors, collecting what {@link OnnxGraphContents} holds. */
class GraphWalker {
  readonly inputs: OnnxValueInfo[] = [];
  readonly initializerNames: string[] = [];
  readonly nodes: OnnxNodeInfo[] = [];
  readonly externalTensors: OnnxExternalTensor[] = [];
  private readonly counts = new Map<string, number>();

  private count(kind: string): void {
    const count = (this.counts.get(kind) ?? 0) + 1;
    if (count > MAX_ITEMS) throw new OnnxParseError(`more than ${MAX_ITEMS} ${kind}`);
    this.counts.set(kind, count);
  }

  /** A nested message to walk once its parent is read; counted as it is found. */
  private collect(
    kind: 'nodes' | 'attributes' | 'tensors' | 'graphs' | 'graph inputs',
    message: WireReader,
  ): WireReader {
    this.count(kind);
    return message;
  }

  tensor(reader: WireReader, scope: string): string {
    let name = '';
    let external = false;
    let location: string | null = null;
    while (!reader.done) {
      const { field, wireType } = reader.tag();
      if (field === 8) name = readString(reader, 'TensorProto.name', wireType);
      else if (field === 13) {
        external = true;
        const entry = readStringEntry(readMessage(reader, 'TensorProto.external_data', wireType));
        if (entry.key === 'location') location = entry.value;
      } else if (field === 14) {
        expectWireType('TensorProto.data_location', wireType, WIRE_VARINT);
        if (reader.varint() === DATA_LOCATION_EXTERNAL) external = true;
      } else reader.skip(wireType);
    }
    if (external) {
      this.count('external tensors');
      this.externalTensors.push({ name, scope, location });
    }
    return name;
  }

  sparseTensor(reader: WireReader, scope: string): string {
    let name = '';
    while (!reader.done) {
      const { field, wireType } = reader.tag();
      if (field === 1) name = this.tensor(readMessage(reader, 'SparseTensorProto.values', wireType), scope);
      else if (field === 2) this.tensor(readMessage(reader, 'SparseTensorProto.indices', wireType), scope);
      else reader.skip(wireType);
    }
    return name;
  }

  /** A GraphProto; the main graph's inputs and initializer names are kept. */
  graph(reader: WireReader, scopeOf: (graphName: string) => string, depth: number, main: boolean): void {
    if (depth > MAX_GRAPH_DEPTH) throw new OnnxParseError(`subgraphs nested more than ${MAX_GRAPH_DEPTH} deep`);
    // The name may follow the nodes on the wire: collect first, walk once it is known.
    let name = '';
    const nodes: WireReader[] = [];
    const initializers: WireReader[] = [];
    const sparseInitializers: WireReader[] = [];
    const inputs: WireReader[] = [];
    while (!reader.done) {
      const { field, wireType } = reader.tag();
      if (field === 1) nodes.push(this.collect('nodes', readMessage(reader, 'GraphProto.node', wireType)));
      else if (field === 2) name = readString(reader, 'GraphProto.name', wireType);
      else if (field === 5)
        initializers.push(this.collect('tensors', readMessage(reader, 'GraphProto.initializer', wireType)));
      else if (field === 11)
        inputs.push(this.collect('graph inputs', readMessage(reader, 'GraphProto.input', wireType)));
      else if (field === 15)
        sparseInitializers.push(
          this.collect('tensors', readMessage(reader, 'GraphProto.sparse_initializer', wireType)),
        );
      else reader.skip(wireType);
    }
    const scope = scopeOf(name);
    for (const initializer of initializers) {
      const tensorName = this.tensor(initializer, scope);
      if (main) this.initializerNames.push(tensorName);
    }
    for (const initializer of sparseInitializers) {
      const tensorName = this.sparseTensor(initializer, scope);
      if (main) this.initializerNames.push(tensorName);
    }
    if (main) this.inputs.push(...inputs.map(readValueInfo));
    for (const node of nodes) this.node(node, scope, depth);
  }

  node(reader: WireReader, scope: string, depth: number): void {
    let name = '';
    let opType = '';
    let domain = '';
    const attributes: WireReader[] = [];
    while (!reader.done) {
      const { field, wireType } = reader.tag();
      if (field === 3) name = readString(reader, 'NodeProto.name', wireType);
      else if (field === 4) opType = readString(reader, 'NodeProto.op_type', wireType);
      else if (field === 5)
        attributes.push(this.collect('attributes', readMessage(reader, 'NodeProto.attribute', wireType)));
      else if (field === 7) domain = readString(reader, 'NodeProto.domain', wireType);
      else reader.skip(wireType);
    }
    this.nodes.push({ name, opType, domain, scope });
    const owner = `node ${JSON.stringify(name)} (${opType}) in ${scope}`;
    for (const attribute of attributes) this.attribute(attribute, owner, depth);
  }

  /** An AttributeProto of a node (or a function's default); its tensors and subgraphs are walked. */
  attribute(reader: WireReader, owner: string, depth: number): void {
    let name = '';
    const tensors: WireReader[] = [];
    const sparseTensors: WireReader[] = [];
    const graphs: WireReader[] = [];
    while (!reader.done) {
      const { field, wireType } = reader.tag();
      if (field === 1) name = readString(reader, 'AttributeProto.name', wireType);
      else if (field === 5 || field === 10)
        tensors.push(this.collect('tensors', readMessage(reader, 'AttributeProto tensor', wireType)));
      else if (field === 6 || field === 11)
        graphs.push(this.collect('graphs', readMessage(reader, 'AttributeProto graph', wireType)));
      else if (field === 22 || field === 23)
        sparseTensors.push(this.collect('tensors', readMessage(reader, 'AttributeProto sparse tensor', wireType)));
      else reader.skip(wireType);
    }
    const scope = `attribute ${JSON.stringify(name)} of ${owner}`;
    for (const tensor of tensors) this.tensor(tensor, scope);
    for (const tensor of sparseTensors) this.sparseTensor(tensor, scope);
    for (const graph of graphs)
      this.graph(graph, () => `subgraph ${JSON.stringify(name)} of ${owner}`, depth + 1, false);
  }

  /** A model-local FunctionProto: its nodes run like the graph's. */
  function(reader: WireReader): void {
    let name = '';
    let domain = '';
    const nodes: WireReader[] = [];
    const attributes: WireReader[] = [];
    while (!reader.done) {
      const { field, wireType } = reader.tag();
      if (field === 1) name = readString(reader, 'FunctionProto.name', wireType);
      else if (field === 7) nodes.push(this.collect('nodes', readMessage(reader, 'FunctionProto.node', wireType)));
      else if (field === 10) domain = readString(reader, 'FunctionProto.domain', wireType);
      else if (field === 11)
        attributes.push(this.collect('attributes', readMessage(reader, 'FunctionProto.attribute_proto', wireType)));
      else reader.skip(wireType);
    }
    const scope = `function ${JSON.stringify(domain ? `${domain}:${name}` : name)}`;
    for (const attribute of attributes) this.attribute(attribute, scope, 0);
    for (const node of nodes) this.node(node, scope, 0);
  }

  trainingInfo(reader: WireReader, index: number): void {
    while (!reader.done) {
      const { field, wireType } = reader.tag();
      if (field === 1 || field === 2) {
        const part = field === 1 ? 'initialization' : 'algorithm';
        const graph = readMessage(reader, `TrainingInfoProto.${part}`, wireType);
        this.graph(graph, (name) => `training_info[${index}].${part} graph ${JSON.stringify(name)}`, 0, false);
      } else reader.skip(wireType);
    }
  }

  contents(): OnnxGraphContents {
    return {
      inputs: this.inputs,
      initializerNames: this.initializerNames,
      nodes: this.nodes,
      externalTensors: this.externalTensors,
    };
  }
}

/** Parses a serialized ONNX ModelProto and walks its graphs; throws {@link OnnxParseError}. */
export function readOnnxModelHeader(bytes: Uint8Array): OnnxModelHeader {
  if (bytes.length === 0) throw new OnnxParseError('the file is empty');
  const reader = new WireReader(bytes);
  const walker = new GraphWalker();
  let trainingInfos = 0;
  let irVersion = 0;
  let producerName = '';
  let producerVersion = '';
  let hasGraph = false;
  const opsetImports: OpsetImport[] = [];
  const metadataProps: Record<string, string> = Object.create(null) as Record<string, string>;
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    switch (field) {
      case 1:
        expectWireType('ModelProto.ir_version', wireType, WIRE_VARINT);
        irVersion = reader.varint();
        break;
      case 2:
        expectWireType('ModelProto.producer_name', wireType, WIRE_LENGTH_DELIMITED);
        producerName = reader.string();
        break;
      case 3:
        expectWireType('ModelProto.producer_version', wireType, WIRE_LENGTH_DELIMITED);
        producerVersion = reader.string();
        break;
      case 7:
        expectWireType('ModelProto.graph', wireType, WIRE_LENGTH_DELIMITED);
        walker.graph(reader.sub(), (name) => `graph ${JSON.stringify(name)}`, 0, true);
        hasGraph = true;
        break;
      case 8:
        expectWireType('ModelProto.opset_import', wireType, WIRE_LENGTH_DELIMITED);
        opsetImports.push(readOpsetImport(reader.sub()));
        break;
      case 14: {
        expectWireType('ModelProto.metadata_props', wireType, WIRE_LENGTH_DELIMITED);
        const { key, value } = readStringEntry(reader.sub());
        if (key in metadataProps) throw new OnnxParseError(`metadata key "${key}" appears more than once`);
        metadataProps[key] = value;
        break;
      }
      case 20:
        walker.trainingInfo(readMessage(reader, 'ModelProto.training_info', wireType), trainingInfos++);
        break;
      case 25:
        walker.function(readMessage(reader, 'ModelProto.functions', wireType));
        break;
      default:
        reader.skip(wireType);
    }
  }
  if (irVersion === 0) throw new OnnxParseError('no ir_version (field 1): not an ONNX ModelProto');
  if (!hasGraph) throw new OnnxParseError('no graph (field 7): not an ONNX ModelProto');
  return {
    irVersion,
    producerName,
    producerVersion,
    opsetImports,
    metadataProps,
    hasGraph,
    graph: walker.contents(),
  };
}
