// The App rendered in jsdom over the MockBackend: screens, the safety status, the language switch.
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { MOCK_LOSS_CODE, MockBackend } from '../src/api/mock';
import { createController } from '../src/controller';
import { initialState } from '../src/state';
import { createStore } from '../src/store';
import { App, parseRoute, ROUTES } from '../src/ui/App';
import { Ctl } from '../src/ui/context';

let root: HTMLElement | null = null;

/** Waits, letting the app render, until `cond` holds. */
async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await act(() => new Promise<void>((r) => setTimeout(r, 1)));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function mount(hash = '#/devices', backend: MockBackend = new MockBackend({ stepMs: 0 })) {
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
  return { c, root: el, store };
}

afterEach(() => {
  if (!root) return;
  render(null, root);
  root.remove();
  root = null;
});

const text = () => root?.textContent ?? '';

/** Types into an input as a user does (value, then the input event the screens listen to). */
async function type(input: Element | null, value: string) {
  await act(() => {
    (input as HTMLInputElement).value = value;
    input!.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

async function click(el: Element | null) {
  await act(() => {
    (el as HTMLElement).click();
  });
}

async function submit(form: Element | null) {
  await act(() => {
    form!.dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }));
  });
}

describe('App', () => {
  it('routes by hash, defaulting to Devices', () => {
    expect(parseRoute('#/payment')).toBe('payment');
    expect(parseRoute('#/qa?x=1')).toBe('qa');
    expect(parseRoute('')).toBe('devices');
    expect(parseRoute('#/nowhere')).toBe('devices');
  });

  it('renders every screen with one h1 and no inline styles', async () => {
    const { root } = await mount();
    for (const r of ROUTES) {
      await act(async () => {
        window.location.hash = `#/${r}`;
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      });
      expect(root.querySelectorAll('h1'), r).toHaveLength(1);
      expect(root.querySelector('[style]'), r).toBeNull();
      expect(root.querySelector(`[data-testid="screen-${r}"]`), r).not.toBeNull();
    }
  });

  it('always shows the device safety status, as the device reports it', async () => {
    const { c, root } = await mount();
    expect(root.querySelector('[data-testid="safety"]')?.textContent).toContain('No device connected');
    await act(() => c.connect('sim-1'));
    expect(root.querySelector('[data-testid="safety"]')?.textContent).toContain('PinPad Sim 1');
    await act(() => c.qaTripTamper('sim-1'));
    const safety = root.querySelector('[data-testid="safety"]')!;
    expect(safety.getAttribute('data-tone')).toBe('danger');
    expect(safety.getAttribute('aria-live')).toBe('polite');
    expect(safety.textContent).toContain('TAMPERED');
  });

  it('switches language at run time', async () => {
    const { c, root } = await mount();
    expect(root.querySelector('h1')?.textContent).toBe('Devices');
    await act(() => c.setLanguage('zh-CN'));
    expect(root.querySelector('h1')?.textContent).toBe('设备');
    expect(document.documentElement.lang).toBe('zh-CN');
    expect(text()).toContain('未连接设备');
  });

  it('shows the mock keypad beside the flows when the active device is a mock', async () => {
    const { c, root } = await mount('#/payment');
    expect(root.querySelector('[data-testid="mock-device"]')).toBeNull();
    await act(() => c.connect('sim-1'));
    const pad = root.querySelector('[data-testid="mock-device"]');
    expect(pad).not.toBeNull();
    expect(pad!.querySelectorAll('button[data-key]')).toHaveLength(13);
    // Idle: no prompt on the device, so the keypad takes no key (a real one discards them).
    const enabled = () => [...pad!.querySelectorAll<HTMLButtonElement>('button[data-key]')].filter((b) => !b.disabled);
    expect(enabled()).toHaveLength(0);
    // A prompt goes up (pairing shows its code): the keys come alive.
    const pairing = c.pair();
    await until(() => enabled().length === 13, 'keypad enabled at the prompt');
    await act(() => c.keyPress('sim-1', 'ok'));
    await act(() => pairing);
    await until(() => enabled().length === 0, 'keypad idle again');
  });

  it('staff act on the device the rest of the app is using until they pick another', async () => {
    const { c, root } = await mount('#/staff');
    await act(() => c.qaStart('PinPad Sim 2'));
    await act(() => c.connect('sim-2'));
    await act(() => c.staffSignIn('op-01', 'operator-pass'));
    const select = root.querySelector<HTMLSelectElement>('[data-testid="staff-device"]')!;
    expect(select.options.length).toBeGreaterThan(1);
    expect(select.options[0].value).not.toBe('sim-2');
    expect(select.value).toBe('sim-2');
    await act(() => c.staffSelectDevice(select.options[0].value));
    expect(root.querySelector<HTMLSelectElement>('[data-testid="staff-device"]')!.value).toBe(select.options[0].value);
  });

  it('says what logout ended, and tells the customer in plain words when the bank revokes their PIN pad', async () => {
    const { c, root, store } = await mount('#/login');
    await act(() => c.connect('sim-1'));
    const pairing = c.pair();
    await until(() => store.get().pairing.step === 'compare', 'pairing code');
    await act(() => c.keyPress('sim-1', 'ok'));
    await act(() => pairing);
    c.setLoginCustomer('C-1001');
    await act(() => c.login());
    await act(() => c.logout());
    expect(root.querySelector('[data-testid="logged-out"]')?.textContent).toContain('dropped its session keys');
    await act(() => c.login());
    expect(root.querySelector('[data-testid="logged-out"]')).toBeNull();
    await act(() => c.staffSignIn('clerk-01', 'clerk-pass'));
    await act(() => c.staffAction('revoke', { deviceId: 'sim-1' }));
    const told = root.querySelector('[data-testid="login-bank-command"]');
    expect(told?.getAttribute('role')).toBe('alert');
    expect(told?.textContent).toContain('Revoked by your bank');
    expect(told?.textContent).toContain('it has been wiped');
    // Logged out: the login form is back.
    expect(root.querySelector('[data-testid="login-submit"]')).not.toBeNull();
  });

  it('shows the genuine check of a connected PIN pad on its card', async () => {
    const { c, root } = await mount('#/devices');
    const cell = () => root.querySelector('[data-testid="genuine-PB-SIM-0001"]');
    expect(cell()?.textContent).toContain('Not checked');
    await act(() => c.connect('sim-1'));
    expect(cell()?.textContent).toContain('Genuine: its certificate');
    expect(cell()?.classList.contains('bad')).toBe(false);
  });

  it('staff act on a PIN pad by serial only after a confirmation naming it and its customer', async () => {
    const { c, root, store } = await mount('#/staff');
    await act(() => c.staffSignIn('clerk-01', 'clerk-pass'));
    const box = root.querySelector('[data-testid="staff-by-serial"]')!;
    await type(box.querySelector('#serial-input'), 'PB-SIM-0001');
    await submit(box.querySelector('form'));
    await until(() => root.querySelector('[data-testid="serial-found"]') !== null, 'lookup');
    expect(root.querySelector('[data-testid="serial-found"]')?.textContent).toContain('C-1001');
    await click(root.querySelector('[data-testid="serial-lock"]'));
    const ask = root.querySelector('[data-testid="serial-confirm"]');
    expect(ask?.getAttribute('role')).toBe('alertdialog');
    expect(ask?.textContent).toContain('Lock PB-SIM-0001 of customer C-1001?');
    // Nothing happens before the confirmation.
    expect(store.get().devices[0].lock).toBe('unlocked');
    await click(root.querySelector('[data-testid="serial-confirm-yes"]'));
    await until(() => root.querySelector('[data-testid="serial-done"]') !== null, 'locked');
    expect(store.get().devices[0].lock).toBe('locked');
  });

  it('staff see what the PIN pad answered to each command sent by serial', async () => {
    const { c, root } = await mount('#/staff');
    await act(() => c.connect('sim-1'));
    await act(() => c.staffSignIn('clerk-01', 'clerk-pass'));
    const box = root.querySelector('[data-testid="staff-by-serial"]')!;
    await type(box.querySelector('#serial-input'), 'PB-SIM-0001');
    await submit(box.querySelector('form'));
    await until(() => root.querySelector('[data-testid="serial-found"]') !== null, 'lookup');
    expect(root.querySelector('[data-testid="serial-commands"]')).toBeNull();
    await click(root.querySelector('[data-testid="serial-lock"]'));
    await click(root.querySelector('[data-testid="serial-confirm-yes"]'));
    await until(() => root.querySelector('[data-testid="serial-commands"]') !== null, 'command list');
    const line = root.querySelector('[data-testid="serial-command-1"]')?.textContent ?? '';
    expect(line).toContain('#1 lock by clerk-01');
    expect(line).toContain('done (bound, locked)');
    expect(text()).toContain('the PIN pad does not sign its answer');
  });

  it('staff move the customer of a lost PIN pad to one here, after a confirmation naming both and the customer', async () => {
    const { c, root, store } = await mount('#/staff');
    await act(() => c.qaStart('PinPad Sim 2'));
    await act(() => c.connect('sim-2'));
    await act(() => c.staffSignIn('clerk-01', 'clerk-pass'));
    await act(() => c.staffAction('initialise', { deviceId: 'sim-2' }));
    const box = root.querySelector('[data-testid="staff-by-serial"]')!;
    await type(box.querySelector('#serial-input'), 'PB-SIM-0001');
    await submit(box.querySelector('form'));
    await until(() => root.querySelector('[data-testid="serial-found"]') !== null, 'lookup');
    await click(root.querySelector('[data-testid="serial-rebind"]'));
    const ask = root.querySelector('[data-testid="serial-confirm"]');
    expect(ask?.getAttribute('role')).toBe('alertdialog');
    expect(ask?.textContent).toContain('Move customer C-1001 from PB-SIM-0001 to PinPad Sim 2 (PB-SIM-0002)?');
    expect(store.get().devices.find((d) => d.deviceId === 'sim-1')?.lifecycle).toBe('bound');
    await click(root.querySelector('[data-testid="serial-confirm-yes"]'));
    await until(() => root.querySelector('[data-testid="serial-rebind-look"]') !== null, 'look at the PIN pad');
    expect(root.querySelector('[data-testid="serial-rebind-look"]')?.textContent).toContain('Look at the PIN pad PinPad Sim 2 (PB-SIM-0002)');
    for (const prompt of ['Choose a PIN', 'Repeat the PIN']) {
      await until(() => store.get().displays['sim-2']?.[0] === prompt && store.get().prompts['sim-2'] != null, prompt);
      for (const k of ['2', '4', '6', '8', '1', '0', 'ok'] as const) await act(() => c.keyPress('sim-2', k));
    }
    await until(() => root.querySelector('[data-testid="serial-done"]') !== null, 'moved');
    expect(root.querySelector('[data-testid="serial-done"]')?.textContent).toBe('C-1001 now uses PinPad Sim 2 (PB-SIM-0002); PB-SIM-0001 is revoked.');
    expect(store.get().devices.find((d) => d.deviceId === 'sim-2')).toMatchObject({ lifecycle: 'bound', customerId: 'C-1001' });
    expect(store.get().devices.find((d) => d.deviceId === 'sim-1')?.lifecycle).toBe('revoked');
  });

  it('the customer changes the PIN on the PIN pad and is told the result in plain words', async () => {
    const { c, root, store } = await mount('#/login');
    await act(() => c.connect('sim-1'));
    const pairing = c.pair();
    await until(() => store.get().pairing.step === 'compare', 'pairing code');
    await act(() => c.keyPress('sim-1', 'ok'));
    await act(() => pairing);
    c.setLoginCustomer('C-1001');
    await act(() => c.login());
    const box = () => root.querySelector('[data-testid="pin-change"]');
    expect(box()).not.toBeNull();
    const typePins = async (pins: string[]) => {
      const prompts = ['Enter your current PIN', 'Choose a new PIN (6 digits)', 'Enter the new PIN again'];
      for (const [i, pin] of pins.entries()) {
        await until(() => store.get().displays['sim-1']?.[1] === prompts[i] && store.get().prompts['sim-1'] != null, prompts[i]);
        for (const k of [...pin.split(''), 'ok'] as const) await act(() => c.keyPress('sim-1', k as never));
      }
    };
    // A wrong current PIN: not changed, the tries left said.
    await click(root.querySelector('[data-testid="pin-change-start"]'));
    expect(root.querySelector('[data-testid="pin-change-look"]')?.textContent).toContain('Look at your PIN pad');
    await typePins(['000000', '654321', '654321']);
    await until(() => root.querySelector('[data-testid="pin-change-result"]') !== null, 'wrong PIN result');
    expect(root.querySelector('[data-testid="pin-change-result"]')?.textContent).toContain('2 tries left');
    // New PINs that differ: told in plain words, nothing changed.
    await click(root.querySelector('[data-testid="pin-change-start"]'));
    await typePins(['123456', '654321', '111111']);
    await until(() => root.querySelector('[data-testid="pin-change-refused"]') !== null, 'PINs differ');
    expect(root.querySelector('[data-testid="pin-change-refused"]')?.textContent).toContain('The two new PINs were different');
    // The right one: changed.
    await click(root.querySelector('[data-testid="pin-change-start"]'));
    await typePins(['123456', '654321', '654321']);
    await until(() => root.querySelector('[data-testid="pin-change-result"]') !== null, 'changed');
    expect(root.querySelector('[data-testid="pin-change-result"]')?.textContent).toBe('PIN changed: use the new PIN from now on.');
    // No PIN digits anywhere on the screen.
    expect(text()).not.toContain('654321');
    // In Chinese too.
    await act(() => c.setLanguage('zh-CN'));
    expect(box()?.textContent).toContain('修改 PIN');
  });

  it('the owner wipes the PIN pad only after confirming here and on its keypad', async () => {
    const { c, root, store } = await mount('#/devices');
    await act(() => c.connect('sim-1'));
    const box = root.querySelector('[data-testid="wipe-pin-pad"]')!;
    await click(box.querySelector('[data-testid="wipe-start"]'));
    const ask = root.querySelector('[data-testid="wipe-confirm"]');
    expect(ask?.getAttribute('role')).toBe('alertdialog');
    expect(ask?.textContent).toContain('Wipe PinPad Sim 1 (PB-SIM-0001) of customer C-1001?');
    expect(store.get().devices[0].lifecycle).toBe('bound');
    // X on the keypad: nothing wiped, said so.
    await click(root.querySelector('[data-testid="wipe-confirm-yes"]'));
    await until(() => root.querySelector('[data-testid="wipe-look"]') !== null && store.get().prompts['sim-1'] != null, 'wipe prompt');
    expect(root.querySelector('[data-testid="wipe-look"]')?.textContent).toContain('press OK on its keypad');
    await act(() => c.keyPress('sim-1', 'cancel'));
    await until(() => root.querySelector('[data-testid="wipe-refused"]') !== null, 'kept');
    expect(root.querySelector('[data-testid="wipe-refused"]')?.textContent).toBe('Cancelled on the PIN pad: nothing was wiped.');
    expect(store.get().devices[0].lifecycle).toBe('bound');
    // OK on the keypad: wiped, the bank told.
    await click(box.querySelector('[data-testid="wipe-start"]'));
    await click(root.querySelector('[data-testid="wipe-confirm-yes"]'));
    await until(() => store.get().prompts['sim-1'] != null, 'wipe prompt again');
    await act(() => c.keyPress('sim-1', 'ok'));
    await until(() => root.querySelector('[data-testid="wipe-result"]') !== null, 'wiped');
    expect(root.querySelector('[data-testid="wipe-result"]')?.textContent).toContain('PB-SIM-0001 is wiped');
    expect(store.get().devices[0]).toMatchObject({ lifecycle: 'manufactured', customerId: null });
    await act(() => c.setLanguage('zh-CN'));
    expect(box.textContent).toContain('擦除此 PIN 键盘');
  });

  it('a customer reports their PIN pad lost after confirming; a wrong code is refused', async () => {
    const { root, store } = await mount('#/devices');
    const box = root.querySelector('[data-testid="report-lost"]')!;
    await type(box.querySelector('#lost-serial'), 'PB-SIM-0001');
    await type(box.querySelector('#lost-customer'), 'C-1001');
    await type(box.querySelector('#lost-code'), 'not the code');
    await submit(box.querySelector('form'));
    expect(root.querySelector('[data-testid="lost-confirm"]')?.textContent).toContain('Report PB-SIM-0001 of customer C-1001 lost?');
    await click(root.querySelector('[data-testid="lost-confirm-yes"]'));
    await until(() => box.querySelector('[role="alert"]') !== null, 'refusal');
    expect(store.get().devices[0].lifecycle).toBe('bound');
    await type(box.querySelector('#lost-code'), MOCK_LOSS_CODE);
    await submit(box.querySelector('form'));
    await click(root.querySelector('[data-testid="lost-confirm-yes"]'));
    await until(() => root.querySelector('[data-testid="lost-done"]') !== null, 'reported');
    expect(root.querySelector('[data-testid="lost-done"]')?.textContent).toContain('revoked');
    expect(store.get().devices[0].lifecycle).toBe('revoked');
    // The code does not stay in the form.
    expect((box.querySelector('#lost-code') as HTMLInputElement).value).toBe('');
  });

  it('asks for the pairing passphrase where there is no OS key store, and refuses a wrong one', async () => {
    const backend = new MockBackend({ stepMs: 0 });
    backend.lockKeyStore('correct horse');
    const { root } = await mount('#/devices', backend);
    const card = () => root.querySelector('[data-testid="key-store"]');
    expect(card()?.textContent).toContain('Unlock your pairings');
    expect(root.querySelector('[data-testid="key-store-again"]')).toBeNull();
    await type(root.querySelector('[data-testid="key-store-passphrase"]'), 'battery staple');
    await submit(card()!.querySelector('form'));
    await until(() => !!card()?.querySelector('[role="alert"]'), 'the refusal');
    expect(backend.keyStore).toBe('unlock');
    await type(root.querySelector('[data-testid="key-store-passphrase"]'), 'correct horse');
    await submit(card()!.querySelector('form'));
    await until(() => card() === null, 'the unlocked store');
  });

  it('a new pairing store without an OS key store takes the passphrase twice', async () => {
    const backend = new MockBackend({ stepMs: 0 });
    backend.keyStore = 'create';
    const { root } = await mount('#/devices', backend);
    const card = () => root.querySelector('[data-testid="key-store"]');
    expect(card()?.textContent).toContain('Choose a passphrase');
    await type(root.querySelector('[data-testid="key-store-passphrase"]'), 'correct horse');
    await type(root.querySelector('[data-testid="key-store-again"]'), 'correct hors');
    await submit(card()!.querySelector('form'));
    await until(() => card()?.textContent?.includes('differ') ?? false, 'the mismatch');
    expect(backend.keyStore).toBe('create');
    await type(root.querySelector('[data-testid="key-store-again"]'), 'correct horse');
    await submit(card()!.querySelector('form'));
    await until(() => card() === null, 'the sealed store');
  });

  it('marks the sandbox build in the header and the title', async () => {
    const { root } = await mount();
    expect(root.querySelector('[data-testid="sandbox-badge"]')?.textContent).toBe('Sandbox');
    expect(document.title).toContain('Sandbox');
    expect(root.querySelector('[data-testid="nav-qa"]')).not.toBeNull();
  });

  it('a production build without a bank profile shows the no-bank screen and no QA', async () => {
    const backend = new MockBackend({ stepMs: 0 });
    const base = backend.appInfo.bind(backend);
    backend.appInfo = async () => ({
      ...(await base()),
      backend: 'tauri',
      embedded: false,
      flavour: 'production',
      bankProfile: { status: 'missing', path: '/etc/pinbridge/bank.toml' },
    });
    const { root } = await mount('#/qa', backend);
    expect(root.querySelector('[data-testid="nav-qa"]')).toBeNull();
    expect(root.querySelector('[data-testid="sandbox-badge"]')).toBeNull();
    expect(root.querySelector('[data-testid="screen-qa"]')).toBeNull();
    expect(root.querySelector('[data-testid="no-bank"]')).not.toBeNull();
    expect(root.querySelector('[data-testid="no-bank-path"]')?.textContent).toBe('/etc/pinbridge/bank.toml');
    expect(text()).toContain('No bank is configured');
    // Settings still opens, with the bank read-only.
    await act(async () => {
      window.location.hash = '#/settings';
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    });
    expect(root.querySelector('[data-testid="bank-locked"]')).not.toBeNull();
    expect(root.querySelector<HTMLInputElement>('#set-url')?.readOnly).toBe(true);
  });
});
