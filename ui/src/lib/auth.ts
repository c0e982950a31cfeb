/**
 * API keys, as the page uses them: the key kept for the browser tab (`sessionStorage`), sent
 * as `Authorization: Bearer` on every fetch and as `?access_token=` on the `EventSource` URL
 * (which cannot send headers), and what the page says about whose tasks it shows.
 *
 * With keys off (`GET /whoami` answers `keys: false`) none of this shows: no key is asked for,
 * none is sent.
 */
import type { Identity } from './types';

export const KEY_STORAGE = 'taskwire.apiKey';

/** The headers that carry a key; none without one. */
export function authHeaders(key: string | null): Record<string, string> {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** `url` with `access_token=<key>` added to its query; unchanged without a key. */
export function withAccessToken(url: string, key: string | null): string {
  if (!key) return url;
  const [path, hash] = splitHash(url);
  const sep = path.includes('?') ? '&' : '?';
  return `${path}${sep}access_token=${encodeURIComponent(key)}${hash}`;
}

function splitHash(url: string): [string, string] {
  const at = url.indexOf('#');
  return at < 0 ? [url, ''] : [url.slice(0, at), url.slice(at)];
}

/** Where the key is kept between page loads of one tab. */
export interface KeyStore {
  load(): string | null;
  save(key: string): void;
  clear(): void;
}

/** A `KeyStore` on `sessionStorage` (or any `Storage`); one that fails (private mode) keeps nothing. */
export function storageKeyStore(storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null): KeyStore {
  const attempt = <T>(fn: () => T, fallback: T): T => {
    try {
      return storage ? fn() : fallback;
    } catch {
      return fallback;
    }
  };
  return {
    load: () => attempt(() => storage!.getItem(KEY_STORAGE) || null, null),
    save: (key) => attempt(() => storage!.setItem(KEY_STORAGE, key), undefined),
    clear: () => attempt(() => storage!.removeItem(KEY_STORAGE), undefined),
  };
}

/** A key as typed or pasted: surrounding spaces and a pasted `Bearer ` prefix dropped. */
export function normalizeKey(input: string): string {
  return input.trim().replace(/^bearer\s+/i, '').trim();
}

/** Whose tasks the list holds: "alice's tasks", "all tasks (admin: ops)"; null with keys off. */
export function describeScope(identity: Identity): string | null {
  if (!identity.keys) return null;
  const name = identity.name ?? 'unnamed key';
  return identity.admin ? `all tasks (admin: ${name})` : `${name}'s tasks`;
}

/** The owner column is worth its space only for an admin, who sees several owners' tasks. */
export const showsOwners = (identity: Identity): boolean => identity.keys && identity.admin;

/** What the page shows: checking, asking for a key, the service unreachable, or the dashboard. */
export type Session =
  | { state: 'checking' }
  | { state: 'prompt'; error: string | null }
  /** `GET /whoami` failed for another reason than the key: try again (with the same key). */
  | { state: 'error'; message: string; key: string | null }
  | { state: 'in'; key: string | null; identity: Identity };

/** What `GET /whoami` answered, as far as signing in cares. */
export type WhoamiAnswer =
  | { ok: true; identity: Identity }
  | { ok: false; status: number; message: string };

/**
 * The session after `GET /whoami` with `key` (null: none sent).
 * `typed` says whether the key was just entered in the form (else it came from storage).
 */
export function sessionAfterWhoami(answer: WhoamiAnswer, key: string | null, typed: boolean): Session {
  if (answer.ok) return { state: 'in', key: answer.identity.keys ? key : null, identity: answer.identity };
  if (answer.status === 401) {
    if (key === null) return { state: 'prompt', error: null };
    return {
      state: 'prompt',
      error: typed
        ? 'That API key was not accepted. Check it and try again.'
        : 'The saved API key is no longer accepted. Sign in again.',
    };
  }
  if (typed) return { state: 'prompt', error: `Could not sign in. ${answer.message}` };
  return { state: 'error', message: answer.message, key };
}
