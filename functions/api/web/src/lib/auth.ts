// Sign-in in AWS: Cognito's managed login, authorization code with PKCE
// (RFC 7636). The access token stays in this tab's sessionStorage and goes
// to the API as a bearer token. The local stack has no sign-in.

import type { ConsoleConfig } from '../api/types';

const TOKEN = 'canopy.token';
const VERIFIER = 'canopy.pkce';

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A verifier of 43 characters from 32 random bytes. */
export function newVerifier(random: (a: Uint8Array) => Uint8Array = (a) => crypto.getRandomValues(a)): string {
  return base64url(random(new Uint8Array(32)));
}

/** The S256 challenge of `verifier`. */
export async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

export interface StoredToken {
  access_token: string;
  expires_at_ms: number;
}

export function token(nowMs = Date.now()): string | null {
  try {
    const stored = JSON.parse(sessionStorage.getItem(TOKEN) ?? 'null') as StoredToken | null;
    return stored && stored.expires_at_ms > nowMs + 30_000 ? stored.access_token : null;
  } catch {
    return null;
  }
}

export function redirectUri(): string {
  return `${window.location.origin}/`;
}

export async function authorizeUrl(auth: NonNullable<ConsoleConfig['auth']>, verifier: string, state: string): Promise<string> {
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: auth.client_id,
    redirect_uri: redirectUri(),
    scope: 'openid aws.cognito.signin.user.admin',
    code_challenge_method: 'S256',
    code_challenge: await challengeOf(verifier),
    state,
  });
  return `https://${auth.domain}/oauth2/authorize?${params}`;
}

/**
 * Makes sure there is a token: trades a returning `code` for one, or sends
 * the browser to the managed login (keeping the view to come back to).
 * Resolves false when the page is leaving for the login.
 */
export async function ensureSignedIn(config: ConsoleConfig): Promise<boolean> {
  const auth = config.auth;
  if (!auth || token()) return true;
  const url = new URL(window.location.href);
  const code = url.searchParams.get('code');
  const saved = JSON.parse(sessionStorage.getItem(VERIFIER) ?? 'null') as { verifier: string; state: string; hash: string } | null;
  if (code && saved && url.searchParams.get('state') === saved.state) {
    const response = await fetch(`https://${auth.domain}/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: auth.client_id,
        code,
        redirect_uri: redirectUri(),
        code_verifier: saved.verifier,
      }),
    });
    if (!response.ok) throw new Error(`sign-in failed: the token endpoint answered ${response.status}`);
    const body = (await response.json()) as { access_token: string; expires_in: number };
    sessionStorage.setItem(TOKEN, JSON.stringify({ access_token: body.access_token, expires_at_ms: Date.now() + body.expires_in * 1000 }));
    sessionStorage.removeItem(VERIFIER);
    window.history.replaceState(null, '', `/${saved.hash}`);
    return true;
  }
  const verifier = newVerifier();
  const state = newVerifier();
  sessionStorage.setItem(VERIFIER, JSON.stringify({ verifier, state, hash: window.location.hash }));
  window.location.assign(await authorizeUrl(auth, verifier, state));
  return false;
}

export function signOut(config: ConsoleConfig): void {
  sessionStorage.removeItem(TOKEN);
  if (config.auth) {
    const params = new URLSearchParams({ client_id: config.auth.client_id, logout_uri: redirectUri() });
    window.location.assign(`https://${config.auth.domain}/logout?${params}`);
  }
}
