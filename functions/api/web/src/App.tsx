import { Component, useEffect, useState, type ReactNode } from 'react';

import type { ConsoleConfig } from './api/types';
import { Alerts } from './features/alerts/Alerts';
import { Docs } from './features/docs/Docs';
import { Fleet } from './features/fleet/Fleet';
import { Station } from './features/stations/Station';
import { Stations } from './features/stations/Stations';
import { Vehicle } from './features/vehicle/Vehicle';
import { signOut } from './lib/auth';
import { useLiveStatus } from './lib/live';
import { useRoute, type Route } from './lib/route';

type Theme = 'dark' | 'light';
const THEME = 'canopy.theme';

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem(THEME) === 'light' ? 'light' : 'dark'));
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem(THEME, theme);
  }, [theme]);
  return [theme, () => setTheme((t) => (t === 'dark' ? 'light' : 'dark'))];
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'fleet':
      return <Fleet route={route} />;
    case 'vehicle':
      return <Vehicle key={route.id} route={route} />;
    case 'alerts':
      return <Alerts />;
    case 'stations':
      return <Stations />;
    case 'station':
      return <Station key={route.id} route={route} />;
    case 'docs':
      return <Docs />;
  }
}

/** A bug in a page shows as a message, never as a blank screen. */
class Boundary extends Component<{ children: ReactNode; resetKey: string }, { error: Error | null; key: string }> {
  state = { error: null as Error | null, key: this.props.resetKey };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  static getDerivedStateFromProps(props: { resetKey: string }, state: { error: Error | null; key: string }) {
    return props.resetKey === state.key ? null : { error: null, key: props.resetKey };
  }
  render() {
    if (this.state.error) {
      return (
        <div className="error" role="alert">
          <strong>This page failed.</strong> {this.state.error.message}
        </div>
      );
    }
    return this.props.children;
  }
}

/** Whether updates are pushed (the live stream) or read by polling. */
function LiveBadge() {
  const status = useLiveStatus();
  const label = status === 'live' ? 'live' : status === 'connecting' ? 'connecting…' : 'polling';
  const title =
    status === 'live' ? 'States and alerts are pushed as they change' : 'The live stream is down: pages read every few seconds';
  return (
    <span className="live-badge" data-status={status} title={title} aria-live="polite">
      ● {label}
    </span>
  );
}

export function App({ config }: { config: ConsoleConfig }) {
  const route = useRoute();
  const [theme, toggleTheme] = useTheme();
  const link = (page: Route['page'], href: string, label: string) => (
    <a href={href} aria-current={route.page === page ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Canopy</span>
        <nav aria-label="Pages">
          {link('fleet', '/#/', 'Fleet')}
          {link('alerts', '/#/alerts', 'Alerts')}
          <a href="/#/stations" aria-current={route.page === 'stations' || route.page === 'station' ? 'page' : undefined}>
            Stations
          </a>
          {link('docs', '/docs', 'API')}
        </nav>
        <span className="spacer" />
        <LiveBadge />
        <button type="button" onClick={toggleTheme} aria-label={`Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`}>
          {theme === 'dark' ? '☀' : '☾'}
        </button>
        {config.auth && (
          <button type="button" onClick={() => signOut(config)}>
            Sign out
          </button>
        )}
      </header>
      <main id="main">
        <Boundary resetKey={`${route.page}:${theme}`}>
          <Page key={theme} route={route} />
        </Boundary>
      </main>
    </>
  );
}
