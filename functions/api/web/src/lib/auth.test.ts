import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { challengeOf, newVerifier } from './auth';

describe('PKCE', () => {
  it('makes verifiers of 43 URL-safe characters', () => {
    const v = newVerifier();
    expect(v).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newVerifier()).not.toBe(v);
  });

  it('derives the S256 challenge as RFC 7636 says', async () => {
    const verifier = newVerifier(() => new Uint8Array(32).map((_, i) => i * 7));
    const expected = createHash('sha256').update(verifier).digest('base64url');
    expect(await challengeOf(verifier)).toBe(expected);
  });
});
