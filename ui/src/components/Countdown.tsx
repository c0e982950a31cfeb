import { useCountdown } from '../hooks';

/** "42 s", counting down to `until` (client ms). */
export function Countdown({ until }: { until: number }) {
  const seconds = useCountdown(until);
  return <span className="tabular">{seconds} s</span>;
}
