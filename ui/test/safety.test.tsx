// Issue 17 item 3: a header that tells only what is known (no green "Safe" beside "not
// connected"; link, session and bank live from events, grey when not known), and a payment
// form closed for a device that cannot approve safely, before any bank call.
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MockBackend } from '../src/api/mock';
import type { Key } from '../src/api/types';
import { createController } from '../src/controller';
import { bankFact, paymentBlock } from '../src/safety';
import { initialState } from '../src/state';
import { createStore } from '../src/store';
import { App } from '../src/ui/App';
import { Ctl } from '../src/ui/context';

let root: HTMLElement | null = null;

async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await act(() => new Promise<void>((r) => setTimeout(r, 1)));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function mount(hash = '#/devices') {
  window.location.hash = hash;
  const backend = new MockBackend({ stepMs: 0 });
  const el = document.createElement('div');
  document.body.appendChild(el);
  root = el;
  const store = createStore(initialState('en'));
  const c = createController(backend, store);
  await act(async () => {
    render(
      <Ctl.Provider value={c}>
        <App />
      </Ctl.Provider>,
      el,
    );
    await c.start();
  });
  const q = (css: string) => el.querySelector(css);
  const go = async (route: string) => {
    await act(() => {
      window.location.hash = `#/${route}`;
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    });
  };
  const pairAndLogin = async () => {
    await act(() => c.connect('sim-1'));
    const pairing = c.pair();
    await until(() => store.get().pairing.step === 'compare', 'pairing code');
    await act(() => c.keyPress('sim-1', 'ok' as Key));
    await act(() => pairing);
    c.setLoginCustomer('C-1001');
    await act(() => c.login());
    expect(store.get().session?.customerName).toBe('Li Wei');
  };
  return { backend, c, store, q, go, pairAndLogin };
}

afterEach(() => {
  if (!root) return;
  render(null, root);
  root.remove();
  root = null;
});

describe('the header', () => {
  it('shows no light for a device that is not connected, and a grey link', async () => {
    const { c, q, pairAndLogin } = await mount();
    expect(q('[data-testid="header-session"]')?.getAttribute('data-tone')).toBe('unknown');
    expect(q('[data-testid="header-link"]')?.getAttribute('data-tone')).toBe('unknown');
    await pairAndLogin();
    expect(q('[data-testid="safety"] .indicator-safe')).not.toBeNull();
    expect(q('[data-testid="header-link"]')?.getAttribute('data-tone')).toBe('safe');
    await act(() => c.disconnect('sim-1'));
    await until(() => q('[data-testid="safety-light-unknown"]') !== null, 'the unknown light');
    const safety = q('[data-testid="safety"]')!;
    // The bug: a green "Safe" light beside "not connected".
    expect(safety.querySelector('.indicator-safe')).toBeNull();
    expect(safety.textContent).toContain('not connected');
    expect(safety.textContent).not.toContain('Safe');
    expect(q('[data-testid="header-link"]')?.getAttribute('data-tone')).toBe('unknown');
  });

  it('says logged in, and as whom, on every screen, from the same state', async () => {
    const { q, go, pairAndLogin } = await mount();
    expect(q('[data-testid="header-session"]')?.textContent).toBe('Not logged in');
    await pairAndLogin();
    for (const route of ['devices', 'payment', 'login', 'settings']) {
      await go(route);
      const session = q('[data-testid="header-session"]')!;
      expect(session.textContent, route).toBe('Logged in: Li Wei');
      expect(session.getAttribute('data-tone'), route).toBe('safe');
    }
    expect(q('[data-testid="header-bank"]')?.textContent).toBe('Bank: built-in sandbox, reachable');
  });

  it('shows the bank live from the core: reachable, unreachable with the reason in its tooltip, unknown in grey', async () => {
    const { backend, c, q } = await mount();
    const bank = () => q('[data-testid="header-bank"]')!;
    await until(() => bank().getAttribute('data-tone') === 'safe', 'a reachable bank');
    expect(bank().getAttribute('title')).toBe('The last call to the bank got an answer.');
    await act(() => backend.setBankReach('unreachable', 'connection refused (127.0.0.1:9)'));
    expect(bank().textContent).toBe('Bank: unreachable');
    expect(bank().getAttribute('data-tone')).toBe('warn');
    expect(bank().getAttribute('title')).toContain('connection refused (127.0.0.1:9)');
    await act(() => c.setLanguage('zh-CN'));
    expect(bank().textContent).toBe('银行：无法连接');
    expect(bank().getAttribute('title')).toContain('connection refused (127.0.0.1:9)');
    await act(() => backend.setBankReach('unknown'));
    expect(bank().textContent).toBe('银行：尚未知');
    expect(bank().getAttribute('data-tone')).toBe('unknown');
  });
});

describe('bankFact', () => {
  const info = { version: '1', buildHash: 'x', backend: 'tauri', embedded: false, flavour: 'production', bankProfile: null } as const;
  it('is grey until the core says, never green from the settings alone', () => {
    expect(bankFact({ info, bankReach: { reach: 'unknown', reason: null } })).toMatchObject({ tone: 'unknown', text: 'header.bank.unknown' });
  });
  it('follows the core: reachable green, unreachable amber with the reason', () => {
    expect(bankFact({ info, bankReach: { reach: 'reachable', reason: null } })).toMatchObject({ tone: 'safe', text: 'header.bank.reachable' });
    expect(bankFact({ info, bankReach: { reach: 'unreachable', reason: 'timed out' } })).toMatchObject({
      tone: 'warn',
      text: 'header.bank.unreachable',
      tip: 'header.bank.unreachableTip',
      reason: 'timed out',
    });
  });
});

describe('the payment form is closed before any bank call', () => {
  it('for a tampered device, with no form and no bank call', async () => {
    const { backend, c, q, go, store, pairAndLogin } = await mount();
    await pairAndLogin();
    await go('payment');
    expect(q('#pay-payee')).not.toBeNull();
    await act(() => c.qaTripTamper('sim-1'));
    await until(() => q('[data-testid="payment-blocked"]') !== null, 'the blocked payment');
    expect(q('[data-testid="payment-blocked"]')?.getAttribute('data-reason')).toBe('tampered');
    expect(q('#pay-payee')).toBeNull();
    // Only the bank can fix it: no button that suggests otherwise.
    expect(q('[data-testid="payment-blocked-fix"]')).toBeNull();
    const prepare = vi.spyOn(backend, 'paymentPrepare');
    // Asked anyway (a stale screen), the controller refuses without calling the backend.
    c.editPayment({ payeeName: 'Mallory', payeeAccount: '6222 0800 1234 8888', amount: '9.99' });
    await act(() => c.reviewPayment());
    expect(prepare).not.toHaveBeenCalled();
    const p = store.get().payment;
    expect(p.step === 'form' && p.error?.kind).toBe('tampered');
  });

  it('names the action that fixes each other block', async () => {
    const { c, q, go, store, pairAndLogin } = await mount();
    await go('payment');
    expect(q('[data-testid="payment-blocked"]')?.getAttribute('data-reason')).toBe('loggedOut');
    expect(q('[data-testid="payment-blocked-fix"]')?.getAttribute('href')).toBe('#/login');
    await pairAndLogin();
    await go('payment');
    expect(q('[data-testid="payment-blocked"]')).toBeNull();
    await act(() => c.disconnect('sim-1'));
    await until(() => q('[data-testid="payment-blocked"]') !== null, 'the blocked payment');
    expect(q('[data-testid="payment-blocked"]')?.getAttribute('data-reason')).toBe('disconnected');
    expect(q('[data-testid="payment-blocked-fix"]')?.getAttribute('href')).toBe('#/devices');
    const dev = store.get().devices.find((d) => d.deviceId === 'sim-1')!;
    const base = { session: store.get().session, links: {}, activeDeviceId: 'sim-1' };
    const connected = { ...dev, connected: true };
    expect(paymentBlock({ ...base, devices: [{ ...connected, paired: false }] })).toEqual({ reason: 'unpaired', fix: 'pairing' });
    expect(paymentBlock({ ...base, devices: [{ ...connected, lock: 'locked' }] })).toEqual({ reason: 'locked', fix: 'login' });
    expect(paymentBlock({ ...base, devices: [{ ...connected, lifecycle: 'revoked' }] })).toEqual({ reason: 'revoked', fix: null });
    expect(paymentBlock({ ...base, devices: [connected], links: { 'sim-1': { link: 'reconnecting', message: '' } } })).toEqual({ reason: 'reconnecting', fix: null });
    expect(paymentBlock({ ...base, devices: [connected] })).toBeNull();
  });
});
