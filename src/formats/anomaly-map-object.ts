/**
 * The S3 object of one anomaly map (an evaluated image's, an inspection's): self-describing, so
 * it can be read back without its database row. A 32-byte little-endian header, then the map quantised to uint16
 * by anomaly-map-codec.ts (2 bytes a pixel):
 *
 *   0  "AMAP"   4  version (1)   5  encoding (1: uint16 linear between min and max)   6  reserved (2)
 *   8  width (uint32)   12  height (uint32)   16  min (float64)   24  max (float64)   32  width × height uint16
 *
 * Metrics are always computed from the decoded map, so they can be recomputed exactly from
 * the stored objects.
 */
import { decodeAnomalyMap, encodeAnomalyMap } from './anomaly-map-codec';

const MAGIC = 'AMAP';
const VERSION = 1;
const ENCODING_UINT16_LINEAR = 1;
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

export function encodeMapObject(map: Float32Array, width: number, height: number): Buffer {
  if (map.length !== width * height)
    throw new RangeError(`a ${width}×${height} map has ${width * height} values, got ${map.length}`);
  const encoded = encodeAnomalyMap(map);
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, 'ascii');
  header.writeUInt8(VERSION, 4);
  header.writeUInt8(ENCODING_UINT16_LINEAR, 5);
  header.writeUInt32LE(width, 8);
  header.writeUInt32LE(height, 12);
  header.writeDoubleLE(encoded.min, 16);
  header.writeDoubleLE(encoded.max, 24);
  return Buffer.concat([header, encoded.bytes]);
}

export function decodeMapObject(bytes: Buffer): AnomalyMapObject {
  if (bytes.length < HEADER_BYTES || bytes.toString('ascii', 0, 4) !== MAGIC)
    throw new MapObjectFormatError('not an anomaly map object');
  const version = bytes.readUInt8(4);
  const encoding = bytes.readUInt8(5);
  if (version !== VERSION || encoding !== ENCODING_UINT16_LINEAR)
    throw new MapObjectFormatError(`unknown anomaly map object version ${version}, encoding ${encoding}`);
  const width = bytes.readUInt32LE(8);
  const height = bytes.readUInt32LE(12);
  const data = bytes.subarray(HEADER_BYTES);
  if (data.length !== width * height * 2)
    throw new MapObjectFormatError(
      `a ${width}×${height} map needs ${width * height * 2} data bytes, the object has ${data.length}`,
    );
  const map = decodeAnomalyMap({ bytes: data, min: bytes.readDoubleLE(16), max: bytes.readDoubleLE(24) });
  return { width, height, map };
}
