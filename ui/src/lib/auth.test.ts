import { describe, expect, it } from 'vitest';
import {
  KEY_STORAGE,
  authHeaders,
  describeScope,
  normalizeKey,
  sessionAfterWhoami,
  showsOwners,
  storageKeyStore,
  withAccessToken,
} from './auth';

describe('sending the key', () => {
  it('as a Bearer header, or no header without a key', () => {
    expect(authHeaders('k-123')).toEqual({ Authorization: 'Bearer k-123' });
    expect(authHeaders(null)).toEqual({});
    expect(authHeaders('')).toEqual({});
  });

  it('as ?access_token= on a URL, escaped, after any query and before a fragment', () => {
    expect(withAccessToken('/events', 'abc')).toBe('/events?access_token=abc');
    expect(withAccessToken('/events?last_event_id=5', 'a b&c')).toBe('/events?last_event_id=5&access_token=a%20b%26c');
    expect(withAccessToken('/x#top', 'k')).toBe('/x?access_token=k#top');
    expect(withAccessToken('/events', null)).toBe('/events');
  });

  it('takes a key as pasted', () => {
    expect(normalizeKey('  abc \n')).toBe('abc');
    expect(normalizeKey('Bearer abc')).toBe('abc');
    expect(normalizeKey('   ')).toBe('');
  });
});

describe('keeping the key', () => {
  function memoryStorage() {
    const items = new Map<string, string>();
    return {
      items,
      getItem: (k: string) => items.get(k) ?? null,
      setItem: (k: string, v: string) => void items.set(k, v),
      removeItem: (k: string) => void items.delete(k),
    };
  }

  it('saves, loads and clears it in the storage given', () => {
    const storage = memoryStorage();
    const store = storageKeyStore(storage);
    expect(store.load()).toBeNull();
    store.save('secret');
    expect(storage.items.get(KEY_STORAGE)).toBe('secret');
    expect(store.load()).toBe('secret');
    store.clear();
    expect(store.load()).toBeNull();
  });

  it('keeps nothing, without failing, when there is no storage or it throws', () => {
    const none = storageKeyStore(null);
    none.save('x');
    expect(none.load()).toBeNull();
    const broken = storageKeyStore({
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('denied');
      },
      removeItem: () => {
        throw new Error('denied');
      },
    });
    expect(() => broken.save('x')).not.toThrow();
    expect(() => broken.clear()).not.toThrow();
    expect(broken.load()).toBeNull();
  });
});

describe('whose tasks', () => {
  it('names the key, says when an admin sees all, and nothing with keys off', () => {
    expect(describeScope({ keys: true, name: 'alice', admin: false })).toBe("alice's tasks");
    expect(describeScope({ keys: true, name: 'ops', admin: true })).toBe('all tasks (admin: ops)');
    expect(describeScope({ keys: false, name: null, admin: true })).toBeNull();
  });

  it('shows owners only to an admin with keys on', () => {
    expect(showsOwners({ keys: true, name: 'ops', admin: true })).toBe(true);
    expect(showsOwners({ keys: true, name: 'alice', admin: false })).toBe(false);
    expect(showsOwners({ keys: false, name: null, admin: true })).toBe(false);
  });
});

describe('the session after GET /whoami', () => {
  const alice = { keys: true, name: 'alice', admin: false };

  it('is in with the identity; with keys off no key is kept', () => {
    expect(sessionAfterWhoami({ ok: true, identity: alice }, 'k', true)).toEqual({ state: 'in', key: 'k', identity: alice });
    const open = { keys: false, name: null, admin: true };
    expect(sessionAfterWhoami({ ok: true, identity: open }, null, false)).toEqual({ state: 'in', key: null, identity: open });
  });

  it('asks for a key on a 401: quietly without one, with a clear error for a wrong or stale one', () => {
    const refused = { ok: false as const, status: 401, message: 'Unauthorized' };
    expect(sessionAfterWhoami(refused, null, false)).toEqual({ state: 'prompt', error: null });
    expect(sessionAfterWhoami(refused, 'typo', true)).toEqual({
      state: 'prompt',
      error: 'That API key was not accepted. Check it and try again.',
    });
    expect(sessionAfterWhoami(refused, 'old', false)).toMatchObject({ state: 'prompt', error: /saved API key/ });
  });

  it('tells other failures apart from a wrong key', () => {
    const down = { ok: false as const, status: 0, message: 'Network error' };
    expect(sessionAfterWhoami(down, 'k', false)).toEqual({ state: 'error', message: 'Network error', key: 'k' });
    const limited = { ok: false as const, status: 429, message: 'Too Many Requests' };
    expect(sessionAfterWhoami(limited, 'k', true)).toEqual({
      state: 'prompt',
      error: 'Could not sign in. Too Many Requests',
    });
  });
});
