import type { Identity } from '../lib/types';
import { Icon } from './Icon';

/** Which key the page uses, and the way out. */
export function SessionControls({ identity, onSignOut }: { identity: Identity; onSignOut: () => void }) {
  return (
    <div className="session" data-testid="session">
      <p>
        <Icon name="key" /> <span className="sr-only">Signed in as </span>
        <strong>{identity.name}</strong>
        {identity.admin && <span className="muted"> (admin)</span>}
      </p>
      <button type="button" className="small" onClick={onSignOut}>
        <Icon name="signOut" /> Sign out
      </button>
    </div>
  );
}
