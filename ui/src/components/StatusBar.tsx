import type { RateInfo } from '../lib/api';
import type { FeedStatus } from '../lib/feed';
import { Countdown } from './Countdown';
import { Icon } from './Icon';

interface Props {
  feed: FeedStatus;
  rate: RateInfo | null;
  /** Seconds left of the 429 countdown; 0 when none runs. */
  limitedS: number;
}

/** Connection indicator, request quota and the rate-limit countdown. */
export function StatusBar({ feed, rate, limitedS }: Props) {
  return (
    <div className="statusbar">
      <p className={`conn conn-${feed.state}`} data-testid="connection" data-state={feed.state}>
        <span className="conn-dot" aria-hidden="true" />
        <span className="sr-only">Live updates: </span>
        {feed.state === 'live' && 'Live'}
        {feed.state === 'connecting' && 'Connecting…'}
        {feed.state === 'reconnecting' &&
          (feed.at === null ? (
            'Reconnecting…'
          ) : (
            <>
              Reconnecting in <Countdown until={feed.at} />
            </>
          ))}
      </p>
      <p className="quota" data-testid="quota">
        {rate ? (
          <>
            <span className="tabular">{rate.remaining}</span>
            {rate.quota !== null && <> of {rate.quota}</>} requests left
            {rate.windowS !== null && <span className="muted"> (per {rate.windowS} s)</span>}
          </>
        ) : (
          <span className="muted">Quota: not known yet</span>
        )}
      </p>
      {limitedS > 0 && (
        <p className="limited" data-testid="rate-limited">
          <Icon name="hourglass" /> Rate limited: try again in{' '}
          <span className="tabular">{limitedS} s</span>
        </p>
      )}
    </div>
  );
}
