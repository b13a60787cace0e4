// The window: skip link, header with the always-visible device safety status, navigation,
// the current screen, and (when the active device is a mock) its on-screen PIN pad.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Language } from '../api/types';
import { LANGUAGES, type MessageKey } from '../i18n';
import { bankFact, linkFact, sessionFact, type HeaderFact } from '../safety';
import { activeDevice } from '../state';
import { useApp, useController, useT } from './context';
import { IndicatorLight, MockDevicePanel } from './common';
import { ConfirmationsScreen } from './screens/Confirmations';
import { DevicesScreen } from './screens/Devices';
import { FirstRun } from './screens/FirstRun';
import { HistoryScreen } from './screens/History';
import { LoginScreen } from './screens/Login';
import { LogsScreen } from './screens/Logs';
import { PairingScreen } from './screens/Pairing';
import { PaymentScreen } from './screens/Payment';
import { QaScreen } from './screens/Qa';
import { SettingsScreen } from './screens/Settings';
import { StaffScreen } from './screens/Staff';

export const ROUTES = ['devices', 'pairing', 'login', 'payment', 'history', 'confirmations', 'staff', 'qa', 'logs', 'settings'] as const;
export type Route = (typeof ROUTES)[number];

export function parseRoute(hash: string): Route {
  const r = hash.replace(/^#\/?/, '').split(/[?/]/)[0];
  return (ROUTES as readonly string[]).includes(r) ? (r as Route) : 'devices';
}

function useRoute(): Route {
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Staff and QA screens: only in staff mode, so a customer's menu has none of them. */
const STAFF_ROUTES: Route[] = ['staff', 'qa'];

/** The production build has no QA tools: its route and nav entry are gone. Without staff mode
 *  neither are Staff and QA. */
export function routesFor(flavour: 'production' | 'sandbox' | undefined, staffMode = true): readonly Route[] {
  return ROUTES.filter((r) => !(r === 'qa' && flavour === 'production') && (staffMode || !STAFF_ROUTES.includes(r)));
}

/** Screens that need no bank: the rest show the no-bank screen in a production build without one. */
const WITHOUT_BANK: Route[] = ['logs', 'settings'];

/** The production build without a (valid) bank profile: says so and what the administrator installs. */
function NoBankScreen() {
  const t = useT();
  const profile = useApp((s) => s.info?.bankProfile);
  if (!profile || profile.status === 'loaded') return null;
  return (
    <section class="no-bank" data-testid="no-bank">
      <h1 tabIndex={-1}>{t('noBank.title')}</h1>
      <p>{t(profile.status === 'missing' ? 'noBank.missing' : 'noBank.invalid')}</p>
      {profile.status === 'invalid' && (
        <p>
          <code data-testid="no-bank-error">{profile.error}</code>
        </p>
      )}
      <p>{t('noBank.install')}</p>
      <p>
        <code data-testid="no-bank-path">{profile.path}</code>
      </p>
      <p class="muted">{t('noBank.contents')}</p>
    </section>
  );
}

export function SafetyStatus() {
  const t = useT();
  const dev = useApp(activeDevice);
  if (!dev) {
    return (
      <div class="safety safety-none" role="status" aria-live="polite" data-testid="safety">
        <span class="led" aria-hidden="true" />
        <span>{t('safety.noDevice')}</span>
      </div>
    );
  }
  const danger = dev.tamper === 'tampered' || dev.indicator === 'danger';
  const warn = dev.lock === 'locked' || dev.lifecycle === 'revoked' || !dev.connected;
  const tone = danger ? 'danger' : warn ? 'warn' : dev.indicator === 'safe' ? 'safe' : 'off';
  const msg: MessageKey =
    dev.tamper === 'tampered'
      ? 'safety.tampered'
      : dev.indicator === 'danger'
        ? 'safety.danger'
        : !dev.connected
          ? 'safety.disconnected'
          : dev.lifecycle === 'revoked'
            ? 'safety.revoked'
            : dev.lock === 'locked'
              ? 'safety.locked'
              : dev.indicator === 'safe'
                ? 'safety.safe'
                : 'safety.off';
  return (
    <div class={`safety safety-${tone}`} role="status" aria-live="polite" aria-atomic="true" data-testid="safety" data-tone={tone}>
      {dev.connected ? (
        <IndicatorLight indicator={dev.indicator} />
      ) : (
        // Not connected: its light is not known now, whatever it was (never a green "Safe").
        <span class="indicator indicator-unknown" data-testid="safety-light-unknown">
          <span class="led" aria-hidden="true" />
          <span>{t('indicator.unknown')}</span>
        </span>
      )}
      <span class="safety-text">
        <strong>{dev.name}</strong> <span class="muted">({t(`transport.${dev.transport}`)})</span> — {t(msg)}
      </span>
    </div>
  );
}

/** Link, session and bank, each live from the core's events, grey when not known. */
export function HeaderFacts() {
  const t = useT();
  const dev = useApp(activeDevice);
  const links = useApp((s) => s.links);
  const session = useApp((s) => s.session);
  const info = useApp((s) => s.info);
  const bankReach = useApp((s) => s.bankReach);
  const facts: ReadonlyArray<readonly [string, HeaderFact]> = [
    ['link', linkFact(dev, links)],
    ['session', sessionFact({ session })],
    ['bank', bankFact({ info, bankReach })],
  ];
  return (
    <ul class="header-facts" data-testid="header-facts">
      {facts.map(([name, fact]) => (
        <li
          key={name}
          class={`fact fact-${fact.tone}`}
          data-testid={`header-${name}`}
          data-tone={fact.tone}
          title={fact.tip ? t(fact.tip, { reason: fact.reason ?? '' }) : undefined}
        >
          <span class="led" aria-hidden="true" />
          {t(fact.text, { customer: session?.customerName ?? '' })}
        </li>
      ))}
    </ul>
  );
}

function LanguageSwitch() {
  const t = useT();
  const c = useController();
  const lang = useApp((s) => s.lang);
  return (
    <label class="lang-switch">
      <span class="sr-only">{t('settings.language')}</span>
      <select value={lang} onChange={(e) => c.setLanguage((e.target as HTMLSelectElement).value as Language)} data-testid="lang-switch">
        {LANGUAGES.map((l) => (
          <option key={l} value={l} lang={l}>
            {t(`lang.${l}`)}
          </option>
        ))}
      </select>
    </label>
  );
}

const SCREENS: Record<Route, () => preact.JSX.Element> = {
  devices: DevicesScreen,
  pairing: PairingScreen,
  login: LoginScreen,
  payment: PaymentScreen,
  history: HistoryScreen,
  confirmations: ConfirmationsScreen,
  staff: StaffScreen,
  qa: QaScreen,
  logs: LogsScreen,
  settings: SettingsScreen,
};

/** Screens where the customer acts on the device, so its mock keypad sits beside them. */
const WITH_DEVICE: Route[] = ['devices', 'pairing', 'login', 'payment', 'confirmations', 'staff'];

export function App() {
  const t = useT();
  const route = useRoute();
  const lang = useApp((s) => s.lang);
  const theme = useApp((s) => s.theme);
  const dev = useApp(activeDevice);
  const pending = useApp((s) => s.confirmations.length);
  const staff = useApp((s) => s.staff);
  const info = useApp((s) => s.info);
  const staffMode = useApp((s) => s.settings?.staffMode ?? false);
  const firstRun = useApp((s) => s.firstRun);
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);
  const sandbox = info?.flavour === 'sandbox';
  const noBank = info?.flavour === 'production' && info.bankProfile?.status !== 'loaded';

  // Layout effect: the page's language changes in the same commit as its words (a screen
  // reader must never read Chinese text under lang="en"; the e2e caught the gap).
  useLayoutEffect(() => {
    document.documentElement.lang = lang;
    document.title = sandbox ? `${t('app.title')} — ${t('app.sandbox')}` : t('app.title');
  }, [lang, sandbox]);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  useEffect(() => {
    // Move focus to the new screen's heading so keyboard and screen-reader users land there.
    if (first.current) {
      first.current = false;
      return;
    }
    mainRef.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [route]);

  const routes = routesFor(info?.flavour, staffMode);
  const shown: Route = routes.includes(route) ? route : 'devices';
  // The first run stands in for the customer screens (Logs and Settings stay reachable).
  const guided = firstRun && !noBank && !WITHOUT_BANK.includes(shown);
  const Screen = noBank && !WITHOUT_BANK.includes(shown) ? NoBankScreen : guided ? FirstRun : SCREENS[shown];
  const showMock = dev?.mock && (guided || WITH_DEVICE.includes(route));
  return (
    <div class={`app${showMock ? ' with-mock' : ''}`}>
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); mainRef.current?.querySelector<HTMLElement>('h1')?.focus(); }}>
        {t('app.skip')}
      </a>
      <header class="topbar">
        <span class="brand">
          <span class="brand-mark" aria-hidden="true">◆</span> PinBridge
          {sandbox && (
            <span class="sandbox-badge" data-testid="sandbox-badge" title={t('app.sandboxHint')}>
              {t('app.sandbox')}
            </span>
          )}
        </span>
        <SafetyStatus />
        <HeaderFacts />
        <LanguageSwitch />
      </header>
      <nav class="nav" aria-label={t('nav.label')}>
        <ul>
          {routes.map((r) => (
            <li key={r}>
              <a href={`#/${r}`} aria-current={r === shown && !guided ? 'page' : undefined} data-testid={`nav-${r}`}>
                {t(`nav.${r}`)}
                {r === 'confirmations' && pending > 0 && (
                  <span class="badge" aria-label={t('nav.pending', { n: pending })}>
                    {pending}
                  </span>
                )}
                {r === 'staff' && staff && <span class="badge badge-staff">{t('staff.on')}</span>}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" ref={mainRef} class={`screen screen-${guided ? 'first-run' : shown}`} data-testid={`screen-${guided ? 'first-run' : shown}`}>
        <Screen />
      </main>
      {showMock && dev && (
        <aside class="side" aria-label={t('mock.aside')}>
          <MockDevicePanel device={dev} />
        </aside>
      )}
    </div>
  );
}
