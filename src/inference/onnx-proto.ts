/**
 * Reads the few top-level fields of an ONNX `ModelProto` that the model contract needs
 * (onnxruntime-node exposes input/output metadata but not `metadata_props` or opsets).
 *
 * A hand-written reader rather than protobufjs: protobufjs is only a transitive dependency
 * here, and the job is ~100 lines of wire-format walking over five fields. The graph (field
 * 7, nearly all of the bytes) is skipped by its length prefix, never decoded.
 *
 * Field numbers from onnx/onnx.proto3: ModelProto { ir_version = 1; producer_name = 2;
 * producer_version = 3; graph = 7; opset_import = 8; metadata_props = 14 },
 * OperatorSetIdProto { domain = 1; version = 2 }, StringStringEntryProto { key = 1; value = 2 }.
 */

export interface OpsetImport {
  /** "" (or "ai.onnx") is the default operator set. */
  readonly domain: string;
  readonly version: number;
}

export interface OnnxModelHeader {
  readonly irVersion: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly opsetImports: readonly OpsetImport[];
  readonly metadataProps: Readonly<Record<string, string>>;
  readonly hasGraph: boolean;
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

/** Parses the top level of a serialized ONNX ModelProto; throws {@link OnnxParseError}. */
export function readOnnxModelHeader(bytes: Uint8Array): OnnxModelHeader {
  if (bytes.length === 0) throw new OnnxParseError('the file is empty');
  const reader = new WireReader(bytes);
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
        reader.span();
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
      default:
        reader.skip(wireType);
    }
  }
  if (irVersion === 0) throw new OnnxParseError('no ir_version (field 1): not an ONNX ModelProto');
  if (!hasGraph) throw new OnnxParseError('no graph (field 7): not an ONNX ModelProto');
  return { irVersion, producerName, producerVersion, opsetImports, metadataProps, hasGraph };
}
