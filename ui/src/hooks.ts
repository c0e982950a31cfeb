import { useEffect, useState } from 'react';

/** The current time, refreshed every `intervalMs` while `active` (a local clock, no requests). */
export function useNow(active: boolean, intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [active, intervalMs]);
  return active ? now : Date.now();
}

/** Whether `until` (client ms) is still ahead, re-rendering when it passes; and seconds left. */
export function useCountdown(until: number | null): number {
  const running = until !== null && until > Date.now();
  const now = useNow(running, 250);
  return until === null ? 0 : Math.max(0, Math.ceil((until - now) / 1000));
}

/** 'dark' or 'light', following the system setting (the charts redraw in its colours). */
export function useColorScheme(): 'light' | 'dark' {
  const [query] = useState(() =>
    typeof window !== 'undefined' && window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null,
  );
  const [dark, setDark] = useState(() => query?.matches ?? false);
  useEffect(() => {
    if (!query) return;
    const onChange = () => setDark(query.matches);
    query.addEventListener('change', onChange);
    return () => query.removeEventListener('change', onChange);
  }, [query]);
  return dark ? 'dark' : 'light';
}
