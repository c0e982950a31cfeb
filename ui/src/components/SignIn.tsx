import { useEffect, useRef, useState, type FormEvent } from 'react';
import { normalizeKey } from '../lib/auth';
import { Icon } from './Icon';

interface Props {
  /** Tries the key; resolves once the service has answered (the page then moves on, or shows `error`). */
  onSignIn: (key: string) => Promise<void>;
  /** Why the last attempt failed, if it did. */
  error: string | null;
}

/** Asks for an API key: the service answers 401 without a valid one. */
export function SignIn({ onSignIn, error }: Props) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [empty, setEmpty] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const message = empty ? 'Enter an API key.' : error;

  useEffect(() => {
    input.current?.focus();
  }, [error]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const value = normalizeKey(key);
    setEmpty(value === '');
    if (!value) {
      input.current?.focus();
      return;
    }
    setBusy(true);
    await onSignIn(value);
    setBusy(false);
  };

  return (
    <main className="signin">
      <form className="panel signin-form" onSubmit={submit} noValidate aria-labelledby="signin-heading">
        <h2 id="signin-heading">
          <Icon name="key" /> Sign in
        </h2>
        <p className="hint" id="signin-hint">
          This service asks for an API key. It is kept in this tab only, until you sign out or close
          it.
        </p>
        <div className="field">
          <label htmlFor="api-key">API key</label>
          <input
            ref={input}
            id="api-key"
            name="api-key"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={key}
            onChange={(e) => setKey(e.target.value)}
            aria-invalid={!!message}
            aria-describedby={message ? 'signin-hint signin-error' : 'signin-hint'}
          />
          {message && (
            <p className="field-errors" id="signin-error" role="alert" data-testid="signin-error">
              <Icon name="warning" /> {message}
            </p>
          )}
        </div>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
