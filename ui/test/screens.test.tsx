// Issue 17 item 5 in jsdom over the MockBackend: the payment history with receipts, the guided
// first run, staff mode (a customer's menu has no Staff or QA), and staff confirmations that
// name the PIN pad and its customer and are never left armed.
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { MockBackend } from '../src/api/mock';
import { createController } from '../src/controller';
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

async function mount(hash: string, backend: MockBackend = new MockBackend({ stepMs: 0 })) {
  window.location.hash = hash;
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
  return { c, root: el, store, backend };
}

afterEach(() => {
  if (!root) return;
  render(null, root);
  root.remove();
  root = null;
});

async function go(route: string) {
  await act(async () => {
    window.location.hash = `#/${route}`;
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  });
}

async function click(el: Element | null) {
  expect(el, 'element to click').not.toBeNull();
  await act(() => {
    (el as HTMLElement).click();
  });
}

const q = (sel: string) => root!.querySelector(sel);
const byId = (id: string) => q(`[data-testid="${id}"]`);

type Mounted = Awaited<ReturnType<typeof mount>>;

async function pairAndLogin({ c, store }: Mounted) {
  await act(() => c.connect('sim-1'));
  const pairing = c.pair();
  await until(() => store.get().pairing.step === 'compare', 'pairing code');
  await act(() => c.keyPress('sim-1', 'ok'));
  await act(() => pairing);
  c.setLoginCustomer('C-1001');
  await act(() => c.login());
  expect(store.get().session).not.toBeNull();
}

/** A payment of `amount` with the mock's PIN (or a wrong one), typed on the mock keypad. */
async function pay({ c, store }: Mounted, amount: string, pin = '123456') {
  c.editPayment({ payeeName: 'Zhang San', payeeAccount: '6222 0800 1234 8888', amount, reference: 'Rent' });
  await act(() => c.reviewPayment());
  const approving = c.approvePayment();
  await until(() => store.get().prompts['sim-1'] != null, 'PIN prompt');
  for (const k of [...pin.split(''), 'ok'] as const) await act(() => c.keyPress('sim-1', k as never));
  await act(() => approving);
  expect(store.get().payment.step).toBe('result');
  c.newPayment();
}

describe('payment history', () => {
  it('lists the payments newest first with masked accounts, outcome and bank reference, and opens a receipt', async () => {
    const m = await mount('#/history');
    expect(byId('history-login')?.textContent).toContain('Log in to see your payments');
    await pairAndLogin(m);
    await go('payment');
    await pay(m, '120.50');
    await pay(m, '9', '000000');
    await go('history');
    await until(() => byId('history-table') !== null, 'history table');
    const rows = [...root!.querySelectorAll('[data-testid^="history-row-"]')];
    expect(rows).toHaveLength(2);
    // Newest first: the wrong PIN, then the paid one.
    expect(rows[0].textContent).toContain('Declined: wrong PIN');
    expect(rows[0].textContent).toContain('CNY 9.00');
    expect(rows[1].textContent).toContain('Paid');
    expect(rows[1].textContent).toContain('CNY 120.50');
    expect(rows[1].textContent).toContain('•••• 8888');
    expect(rows[1].textContent).not.toContain('6222 0800 1234 8888');
    const journal = m.store.get().history.payments[1].journalReference;
    expect(journal).toMatch(/^J/);
    expect(rows[1].textContent).toContain(journal!);
    await click(rows[1].querySelector('[data-testid^="receipt-open-"]'));
    expect(byId('receipt-amount')?.textContent).toBe('CNY 120.50');
    expect(byId('receipt-journal')?.textContent).toBe(journal);
    expect(byId('receipt')?.textContent).toContain('•••• 1234');
    await click(byId('receipt-back'));
    expect(byId('history-table')).not.toBeNull();
    // Logging out forgets them.
    await act(() => m.c.logout());
    expect(m.store.get().history.payments).toHaveLength(0);
  });
});

describe('staff mode', () => {
  it('a customer menu has no Staff or QA; the Settings switch brings them and taking it away signs staff out', async () => {
    const m = await mount('#/staff', new MockBackend({ stepMs: 0, staffMode: false }));
    expect(byId('nav-staff')).toBeNull();
    expect(byId('nav-qa')).toBeNull();
    expect(byId('screen-staff')).toBeNull();
    expect(byId('screen-devices')).not.toBeNull();
    await go('settings');
    await click(byId('staff-mode'));
    await until(() => byId('nav-staff') !== null, 'the Staff entry');
    expect(byId('nav-qa')).not.toBeNull();
    expect((await m.backend.settingsGet()).staffMode).toBe(true);
    await act(() => m.c.staffSignIn('clerk-01', 'clerk-pass'));
    await click(byId('staff-mode'));
    await until(() => byId('nav-staff') === null, 'the Staff entry gone');
    expect(m.store.get().staff).toBeNull();
  });

  it('offers each role only what the bank lets it do', async () => {
    const m = await mount('#/staff');
    await act(() => m.c.staffSignIn('op-01', 'operator-pass'));
    expect(byId('staff-tamper-reset')).not.toBeNull();
    expect(byId('staff-initialise')).toBeNull();
    expect(byId('staff-revoke')).toBeNull();
    expect(byId('serial-lookup')).not.toBeNull();
    await act(() => m.c.staffSignOut());
    await act(() => m.c.staffSignIn('clerk-01', 'clerk-pass'));
    expect(byId('staff-tamper-reset')).toBeNull();
    expect(byId('staff-initialise')).not.toBeNull();
    expect(byId('staff-revoke')).not.toBeNull();
  });

  it('asks before a revoke, naming the PIN pad and its customer, and is not left armed for the next PIN pad', async () => {
    const m = await mount('#/staff');
    await act(() => m.c.connect('sim-1'));
    await act(() => m.c.qaStart('PinPad Sim 2'));
    await act(() => m.c.staffSignIn('clerk-01', 'clerk-pass'));
    await act(() => m.c.staffSelectDevice('sim-1'));
    await click(byId('staff-revoke'));
    const ask = byId('staff-confirm');
    expect(ask?.getAttribute('role')).toBe('alertdialog');
    expect(ask?.textContent).toContain('Revoke PinPad Sim 1 (PB-SIM-0001) of customer C-1001?');
    // Nothing happened yet; another PIN pad disarms the question.
    expect(m.store.get().devices.find((d) => d.deviceId === 'sim-1')?.lifecycle).toBe('bound');
    await act(() => m.c.staffSelectDevice('sim-2'));
    expect(byId('staff-confirm')).toBeNull();
    await act(() => m.c.staffSelectDevice('sim-1'));
    await click(byId('staff-revoke'));
    await click(byId('staff-confirm-yes'));
    await until(() => byId('staff-result') !== null, 'the result');
    expect(m.store.get().devices.find((d) => d.deviceId === 'sim-1')?.lifecycle).toBe('revoked');
    // The result sits above the action cards, and nothing is armed for the next PIN pad.
    const output = byId('staff-output')!;
    const grid = q('.staff-grid')!;
    expect(output.compareDocumentPosition(grid) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    await act(() => m.c.staffSelectDevice('sim-2'));
    expect(byId('staff-confirm')).toBeNull();
    await click(byId('staff-revoke'));
    expect(byId('staff-confirm')?.textContent).toContain('PB-SIM-0002');
  });
});

describe('first run', () => {
  it('guides connect, pair and log in once, with the PIN pad drawing, and is not shown again', async () => {
    const backend = new MockBackend({ stepMs: 0, staffMode: false, firstRunDone: false });
    const m = await mount('#/devices', backend);
    const step = () => byId('first-run')?.getAttribute('data-step');
    expect(step()).toBe('connect');
    expect(q('.pinpad-illustration')).not.toBeNull();
    // The first run is no menu item's page: none is marked current while it stands in.
    expect(q('nav [aria-current="page"]')).toBeNull();
    await click(byId('first-run-connect-PB-SIM-0001'));
    await until(() => step() === 'pair', 'the pair step');
    await click(byId('first-run-pair'));
    await until(() => byId('first-run-code') !== null, 'the pairing code');
    expect(byId('look-at-device')).not.toBeNull();
    await act(() => m.c.keyPress('sim-1', 'ok'));
    await until(() => step() === 'login', 'the login step');
    m.c.setLoginCustomer('C-1001');
    await act(async () => {
      (q('#first-run-customer')!.closest('form') as HTMLFormElement).dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }));
    });
    await until(() => step() === 'done', 'ready');
    expect(byId('first-run-done')?.textContent).toContain('Li Wei');
    await click(byId('first-run-finish'));
    await until(() => byId('first-run') === null, 'the app');
    expect(byId('nav-devices')?.getAttribute('aria-current')).toBe('page');
    expect((await backend.settingsGet()).firstRunDone).toBe(true);
    // Started again: done once, so no first run.
    render(null, root!);
    root!.remove();
    root = null;
    const again = await mount('#/devices', backend);
    expect(again.store.get().firstRun).toBe(false);
    expect(byId('first-run')).toBeNull();
  });

  it('can be skipped, and staff mode never shows it', async () => {
    const backend = new MockBackend({ stepMs: 0, staffMode: false, firstRunDone: false });
    await mount('#/payment', backend);
    expect(byId('first-run')).not.toBeNull();
    await click(byId('first-run-skip'));
    await until(() => byId('first-run') === null, 'skipped');
    expect(byId('screen-payment')).not.toBeNull();
    expect((await backend.settingsGet()).firstRunDone).toBe(true);
    render(null, root!);
    root!.remove();
    root = null;
    await mount('#/devices', new MockBackend({ stepMs: 0, staffMode: true, firstRunDone: false }));
    expect(byId('first-run')).toBeNull();
  });
});
