const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An id that is not even a UUID cannot exist; answering NOT_FOUND beats a database cast error. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
