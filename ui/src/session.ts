/**
 * The page's session: `GET /whoami` at load (with the key kept in `sessionStorage`, if any),
 * then the dashboard, or a prompt for a key when the service answers 401.
 */
import { useCallback, useEffect, useState } from 'react';
import { Api, describeProblem } from './lib/api';
import { sessionAfterWhoami, storageKeyStore, type KeyStore, type Session } from './lib/auth';

function defaultStore(): KeyStore {
  try {
    return storageKeyStore(window.sessionStorage);
  } catch {
    return storageKeyStore(null); // storage disabled
  }
}

async function whoami(key: string | null, typed: boolean): Promise<Session> {
  const result = await new Api({ apiKey: key }).whoami();
  const answer = result.ok
    ? { ok: true as const, identity: result.data }
    : { ok: false as const, status: result.status, message: describeProblem(result.problem) };
  return sessionAfterWhoami(answer, key, typed);
}

export interface SessionControl {
  session: Session;
  signIn: (key: string) => Promise<void>;
  signOut: (message?: string) => void;
  /** After a failure to reach the service: ask again. */
  retry: () => void;
}

export function useSession(store?: KeyStore): SessionControl {
  const [keys] = useState(() => store ?? defaultStore());
  const [session, setSession] = useState<Session>({ state: 'checking' });

  const check = useCallback(
    (key: string | null) => {
      setSession({ state: 'checking' });
      void whoami(key, false).then((next) => {
        if (next.state === 'prompt') keys.clear();
        setSession(next);
      });
    },
    [keys],
  );

  useEffect(() => check(keys.load()), [check, keys]);

  const signIn = useCallback(
    async (key: string) => {
      const next = await whoami(key, true);
      if (next.state === 'in') keys.save(key);
      setSession(next);
    },
    [keys],
  );

  const signOut = useCallback(
    (message?: string) => {
      keys.clear();
      setSession({ state: 'prompt', error: message ?? null });
    },
    [keys],
  );

  const retry = useCallback(() => {
    check(session.state === 'error' ? session.key : keys.load());
  }, [check, keys, session]);

  return { session, signIn, signOut, retry };
}
