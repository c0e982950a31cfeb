import type { ReactNode } from 'react';
import { Icon } from './Icon';

/** The page's header: the name, and whatever status goes beside it. */
export function TopBar({ children }: { children?: ReactNode }) {
  return (
    <header className="topbar">
      <h1>
        <span className="logo">
          <Icon name="logo" />
        </span>
        Taskwire
      </h1>
      {children && <div className="topbar-status">{children}</div>}
    </header>
  );
}
