/** A credential as a request presents it. */
export type Credential = { kind: 'bearer' | 'api-key'; value: string } | { kind: 'none' } | { kind: 'unsupported' };

/** Three base64url parts separated by dots: the compact form of a JWS. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Whether a bearer value looks like a JWT (and is verified as one when `auth.jwt` is set). */
export function looksLikeJwt(value: string): boolean {
  return JWT_SHAPE.test(value);
}

/**
 * The credential of a request: `Authorization: Bearer <value>` (the scheme in any case, RFC 7235),
 * else `x-api-key: <value>`. Another `Authorization` scheme (Basic) with no `x-api-key` is
 * `unsupported`, so the answer can say what to send instead.
 */
export function credentialOf(headers: Readonly<Record<string, string | string[] | undefined>>): Credential {
  const authorization = single(headers.authorization);
  if (authorization !== undefined) {
    const space = authorization.indexOf(' ');
    const scheme = space === -1 ? authorization : authorization.slice(0, space);
    if (scheme.toLowerCase() === 'bearer') {
      const value = authorization.slice(space + 1).trim();
      if (space !== -1 && value !== '') return { kind: 'bearer', value };
    } else if (single(headers['x-api-key']) === undefined) {
      // never echoed: a header without a scheme is likely the secret itself
      return { kind: 'unsupported' };
    }
  }
  const apiKey = single(headers['x-api-key'])?.trim();
  if (apiKey) return { kind: 'api-key', value: apiKey };
  return { kind: 'none' };
}

/** A header sent several times counts as not sent: which copy is meant is ambiguous. */
function single(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) return value.length === 1 ? value[0] : undefined;
  return value === '' ? undefined : value;
}
