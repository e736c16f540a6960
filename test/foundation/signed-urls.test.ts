// UrlSigner: what it signs (path and expiry), and when it refuses.
import { randomBytes } from 'node:crypto';
import { UrlSigner } from '../../src/auth/signed-urls';

const signer = new UrlSigner(randomBytes(32));
const now = new Date('2026-12-07T12:00:00Z');
const inAnHour = new Date(now.getTime() + 3600_000);

function parts(signed: string): { path: string; expires: string | null; signature: string | null } {
  const url = new URL(signed, 'http://service.test');
  return { path: url.pathname, expires: url.searchParams.get('expires'), signature: url.searchParams.get('signature') };
}

test('a URL it signed passes until it expires, then is EXPIRED', () => {
  const { path, expires, signature } = parts(signer.sign('/inspections/a/mask.png', inAnHour));
  expect(signer.check(path, expires, signature, now)).toBeNull();
  expect(signer.check(path, expires, signature, new Date(inAnHour.getTime() - 1000))).toBeNull();
  expect(signer.check(path, expires, signature, inAnHour)).toBe('EXPIRED');
});

test('another path, another expiry, another secret or a malformed parameter is INVALID_SIGNATURE', () => {
  const { path, expires, signature } = parts(signer.sign('/inspections/a/mask.png', inAnHour));
  expect(signer.check('/inspections/b/mask.png', expires, signature, now)).toBe('INVALID_SIGNATURE');
  expect(signer.check(path, String(Number(expires) + 1), signature, now)).toBe('INVALID_SIGNATURE');
  expect(new UrlSigner(randomBytes(32)).check(path, expires, signature, now)).toBe('INVALID_SIGNATURE');
  for (const [badExpires, badSignature] of [
    [undefined, signature],
    [expires, undefined],
    ['-1', signature],
    [expires, (signature as string).toUpperCase()],
    [expires, (signature as string).slice(1)],
    [[expires], signature],
  ])
    expect(signer.check(path, badExpires, badSignature, now)).toBe('INVALID_SIGNATURE');
});

test('refuses a short secret', () => {
  expect(() => new UrlSigner(randomBytes(16))).toThrow(RangeError);
});
