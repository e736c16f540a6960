/**
 * The bucket layout. Object keys are built only here, from ids the service generated
 * and hex content hashes, never from user-supplied strings, so no input can choose
 * where an object lands.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function assertUuid(value: string, what = 'id'): string {
  if (!UUID.test(value)) throw new Error(`${what} "${value}" is not a lowercase UUID; refusing to build an object key from it`);
  return value;
}

export function assertSha256(value: string): string {
  if (!SHA256_HEX.test(value)) throw new Error(`"${value}" is not a lowercase hex SHA-256; refusing to build an object key from it`);
  return value;
}

export const objectKeys = {
  /** Prefix swept for orphans: everything uploaded but not (yet) confirmed lives below it. */
  uploadPrefix: 'uploads/',
  upload: (uploadId: string, part: 'file' | 'mask' = 'file'): string => `uploads/${assertUuid(uploadId, 'upload id')}/${part}`,
};
