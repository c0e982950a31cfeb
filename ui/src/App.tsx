import { Dashboard } from './Dashboard';
import { SignIn } from './components/SignIn';
import { TopBar } from './components/TopBar';
import { useSession } from './session';

const REFUSED = 'The service no longer accepts this API key. Sign in again.';

/** Who is using the page decides what it shows: a sign-in form, or the dashboard. */
export function App() {
  const { session, signIn, signOut, retry } = useSession();

  switch (session.state) {
    case 'checking':
      return (
        <>
          <TopBar />
          <main className="signin">
            <p className="muted">Connecting…</p>
          </main>
        </>
      );
    case 'error':
      return (
        <>
          <TopBar />
          <main className="signin">
            <div role="alert" className="form-errors">
              <p>Could not reach the service. {session.message}</p>
              <button type="button" onClick={retry}>
                Try again
              </button>
            </div>
          </main>
        </>
      );
    case 'prompt':
      return (
        <>
          <TopBar />
          <SignIn onSignIn={signIn} error={session.error} />
        </>
      );
    case 'in':
      return (
        <Dashboard
          // a new key is a new page: new stores, a new feed
          key={session.key ?? ''}
          apiKey={session.key}
          identity={session.identity}
          onSignOut={() => signOut()}
          onUnauthorized={() => signOut(REFUSED)}
        />
      );
  }
}
