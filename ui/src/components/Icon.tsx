/**
 * Small inline SVG icons, drawn in the text colour. They stand beside words and never replace
 * them (hidden from assistive technology), and need no font: Debian's Chromium, for one, has
 * no emoji font, and showed ⏳ as an empty box.
 */
import type { ReactNode } from 'react';

const PATHS = {
  /** queued: an empty circle */
  queued: <circle cx="8" cy="8" r="5.5" />,
  /** processing: a half-filled circle */
  processing: (
    <>
      <circle cx="8" cy="8" r="5.5" />
      <path d="M8 2.5a5.5 5.5 0 0 1 0 11z" fill="currentColor" />
    </>
  ),
  completed: <path d="M3 8.5l3.2 3.2L13 4.8" />,
  failed: <path d="M4 4l8 8M12 4l-8 8" />,
  /** cancelled: a circle struck through */
  cancelled: (
    <>
      <circle cx="8" cy="8" r="5.5" />
      <path d="M4.1 11.9l7.8-7.8" />
    </>
  ),
  /** progress: a bar part filled */
  progress: (
    <>
      <rect x="1.5" y="5.5" width="13" height="5" rx="2.5" />
      <path d="M4 8h4.5" strokeWidth="2.6" />
    </>
  ),
  hourglass: <path d="M4 2h8M4 14h8M5 2c0 3.5 6 3.5 6 6s-6 2.5-6 6M11 2c0 3.5-6 3.5-6 6s6 2.5 6 6" />,
  warning: (
    <>
      <path d="M8 2L1.8 13.2h12.4z" />
      <path d="M8 6.5v3.2M8 11.4v.1" />
    </>
  ),
  up: <path d="M8 13V3M4 7l4-4 4 4" />,
  down: <path d="M8 3v10M4 9l4 4 4-4" />,
  /** the logo: a pulse on a wire */
  logo: <path d="M1.5 9h3l1.8-5 3.4 8 1.8-3h3" />,
  key: (
    <>
      <circle cx="5" cy="10.5" r="2.8" />
      <path d="M7 8.5L13.5 2M11 4.5l2 2M9.5 6l1.5 1.5" />
    </>
  ),
  signOut: <path d="M6 2.5H3v11h3M10 5l3 3-3 3M13 8H6.5" />,
} satisfies Record<string, ReactNode>;

export type IconName = keyof typeof PATHS;

export function Icon({ name, className }: { name: IconName; className?: string }) {
  return (
    <svg
      className={className ? `icon ${className}` : 'icon'}
      viewBox="0 0 16 16"
      width="1em"
      height="1em"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.8"
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
      data-icon={name}
    >
      {PATHS[name]}
    </svg>
  );
}
