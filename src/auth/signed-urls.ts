import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a signed URL was refused. */
export type SignedUrlRefusal = 'INVALID_SIGNATURE' | 'EXPIRED';

/**
 * URLs of our own that work without an API key until they expire, like presigned S3 URLs: the
 * path and the expiry time, HMAC-SHA256-signed with a secret every replica shares.
 */
export class UrlSigner {
  constructor(private readonly secret: Buffer) {
    if (secret.length < 32) throw new RangeError('a URL signing secret needs at least 32 bytes');
  }

  /** `path?expires=<unix seconds>&signature=<hex>`. */
  sign(path: string, expiresAt: Date): string {
    const expires = Math.floor(expiresAt.getTime() / 1000);
    return `${path}?expires=${expires}&signature=${this.signature(path, expires)}`;
  }

  /** null when the URL's signature is right and it has not expired yet. */
  check(path: string, expires: unknown, signature: unknown, now = new Date()): SignedUrlRefusal | null {
    if (typeof expires !== 'string' || !/^\d{1,12}$/.test(expires)) return 'INVALID_SIGNATURE';
    if (typeof signature !== 'string' || !/^[0-9a-f]{64}$/.test(signature)) return 'INVALID_SIGNATURE';
    const expected = Buffer.from(this.signature(path, Number(expires)), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return 'INVALID_SIGNATURE';
    return Number(expires) * 1000 <= now.getTime() ? 'EXPIRED' : null;
  }

  private signature(path: string, expires: number): string {
    return createHmac('sha256', this.secret).update(`${path}\n${expires}`).digest('hex');
  }
}
