/**
 * The S3 object of one anomaly map (an evaluated image's, an inspection's): self-describing, so
 * it can be read back without its database row. A 32-byte little-endian header, then the map:
 *
 *   0  "AMAP"   4  version (1)   5  encoding   6  reserved (2)
 *   8  width (uint32)   12  height (uint32)   16  min (float64)   24  max (float64)   32  width × height values
 *
 * Encodings: 1, uint16 linear between min and max (anomaly-map-codec.ts, 2 bytes a pixel), for
 * evaluations, whose metrics are always computed from the decoded map, so they can be
 * recomputed exactly from the stored objects; 2, the float32 values themselves (4 bytes a
 * pixel), which inspections wrote before their exact maps became NPY files.
 *
 * Exact maps (inspections, whose images are drawn from the stored map and must be exactly those
 * of the map the answer was computed from) are written as NPY files instead (npy.ts: float32,
 * shape (height, width)), which numpy loads directly; decodeMapObject reads all three.
 */
import os from 'node:os';
import { decodeAnomalyMap, encodeAnomalyMap } from './anomaly-map-codec';
import { decodeNpyFloat32, encodeNpyFloat32, isNpy, NpyFormatError } from './npy';

const MAGIC = 'AMAP';
const VERSION = 1;
const ENCODING_UINT16_LINEAR = 1;
const ENCODING_FLOAT32 = 2;
const BIG_ENDIAN = os.endianness() === 'BE';
const HEADER_BYTES = 32;

export const MAP_OBJECT_CONTENT_TYPE = 'application/octet-stream';

export interface AnomalyMapObject {
  width: number;
  height: number;
  map: Float32Array;
}

export class MapObjectFormatError extends Error {
  override readonly name = 'MapObjectFormatError';
}

/** `exact`: an NPY file of the float32 values instead of an AMAP object of uint16 quantised ones (encoding 1). */
export function encodeMapObject(
  map: Float32Array,
  width: number,
  height: number,
  options: { exact?: boolean } = {},
): Buffer {
  if (map.length !== width * height)
    throw new RangeError(`a ${width}×${height} map has ${width * height} values, got ${map.length}`);
  const header = (encoding: number, min: number, max: number): Buffer => {
    const bytes = Buffer.alloc(HEADER_BYTES);
    bytes.write(MAGIC, 0, 'ascii');
    bytes.writeUInt8(VERSION, 4);
    bytes.writeUInt8(encoding, 5);
    bytes.writeUInt32LE(width, 8);
    bytes.writeUInt32LE(height, 12);
    bytes.writeDoubleLE(min, 16);
    bytes.writeDoubleLE(max, 24);
    return bytes;
  };
  if (options.exact) return encodeNpyFloat32({ height, width, values: map });
  const encoded = encodeAnomalyMap(map);
  return Buffer.concat([header(ENCODING_UINT16_LINEAR, encoded.min, encoded.max), encoded.bytes]);
}

export function decodeMapObject(bytes: Buffer): AnomalyMapObject {
  if (isNpy(bytes)) {
    try {
      const { width, height, values } = decodeNpyFloat32(bytes);
      return { width, height, map: values };
    } catch (error) {
      if (error instanceof NpyFormatError) throw new MapObjectFormatError(error.message);
      throw error;
    }
  }
  if (bytes.length < HEADER_BYTES || bytes.toString('ascii', 0, 4) !== MAGIC)
    throw new MapObjectFormatError('not an anomaly map object');
  const version = bytes.readUInt8(4);
  const encoding = bytes.readUInt8(5);
  if (version !== VERSION || (encoding !== ENCODING_UINT16_LINEAR && encoding !== ENCODING_FLOAT32))
    throw new MapObjectFormatError(`unknown anomaly map object version ${version}, encoding ${encoding}`);
  const width = bytes.readUInt32LE(8);
  const height = bytes.readUInt32LE(12);
  const data = bytes.subarray(HEADER_BYTES);
  const bytesPerValue = encoding === ENCODING_FLOAT32 ? 4 : 2;
  if (data.length !== width * height * bytesPerValue)
    throw new MapObjectFormatError(
      `a ${width}×${height} map needs ${width * height * bytesPerValue} data bytes, the object has ${data.length}`,
    );
  if (encoding === ENCODING_FLOAT32) {
    if (BIG_ENDIAN) throw new MapObjectFormatError('float32 map objects are read on little-endian machines only');
    // A copy: the data need not be 4-byte aligned within the buffer.
    return { width, height, map: new Float32Array(Uint8Array.from(data).buffer) };
  }
  const map = decodeAnomalyMap({ bytes: data, min: bytes.readDoubleLE(16), max: bytes.readDoubleLE(24) });
  return { width, height, map };
}
