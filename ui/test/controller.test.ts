// Whole flows through the controller and the store, against the MockBackend (no delays).
import { describe, expect, it } from 'vitest';
import { MockBackend } from '../src/api/mock';
import type { AppEvent, DeviceProgress, Key } from '../src/api/types';
import { createController } from '../src/controller';
import { initialState, type State } from '../src/state';
import { createStore } from '../src/store';

const PIN = '123456';

async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A controller over a fresh mock, recording every state and every event the UI ever held. */
async function setup() {
  const backend = new MockBackend({ stepMs: 0 });
  const store = createStore<State>(initialState());
  const seen: string[] = [];
  store.subscribe((s) => seen.push(JSON.stringify(s)));
  const events: AppEvent[] = [];
  await backend.subscribe((e) => events.push(e));
  const c = createController(backend, store);
  await c.start();
  const s = () => store.get();
  const keys = async (...ks: Key[]) => {
    for (const k of ks) await c.keyPress('sim-1', k);
  };
  return { backend, store, c, s, seen, events, keys };
}

async function pairAndLogin(t: Awaited<ReturnType<typeof setup>>) {
  await t.c.connect('sim-1');
  const pairing = t.c.pair();
  await until(() => t.s().pairing.step === 'compare', 'pairing code');
  await t.keys('ok');
  await pairing;
  expect(t.s().pairing.step).toBe('done');
  t.c.setLoginCustomer('C-1001');
  await t.c.login();
  expect(t.s().session?.customerName).toBe('Li Wei');
}

async function pay(t: Awaited<ReturnType<typeof setup>>, pin = PIN) {
  t.c.editPayment({ payeeName: 'Zhang San', payeeAccount: '6222 0800 1234 8888', amount: '120.50' });
  await t.c.reviewPayment();
  expect(t.s().payment.step).toBe('review');
  const approving = t.c.approvePayment();
  await until(() => t.s().payment.step === 'device' && (t.s().payment as { live: { pin: unknown } }).live.pin !== null, 'PIN prompt');
  await t.keys(...(pin.split('') as Key[]).slice(0, 3));
  const p = t.s().payment;
  expect(p.step === 'device' && p.live.pin).toEqual({ entered: 3, length: 6 });
  await t.keys(...(pin.split('') as Key[]).slice(3), 'ok');
  await approving;
  return t.s().payment;
}

describe('customer flows', () => {
  it('start loads devices, settings, pending requests and logs', async () => {
    const t = await setup();
    expect(t.s().devices.map((d) => d.serial)).toEqual(['PB-SIM-0001']);
    expect(t.s().confirmations).toHaveLength(1);
    expect(t.s().settings?.bankUrl).toBe('');
    expect(t.s().info?.backend).toBe('mock');
    expect(t.s().logs.length).toBeGreaterThan(0);
  });

  it('pair, log in and pay: approved, safe; the PIN never reaches UI state or events', async () => {
    const t = await setup();
    await pairAndLogin(t);
    const result = await pay(t);
    expect(result.step).toBe('result');
    if (result.step !== 'result') return;
    expect(result.result).toMatchObject({ outcome: 'approved', indicator: 'safe', reason: 'none' });
    expect(result.result?.bankReference).toMatch(/^J\d+$/);
    expect(t.s().devices[0].indicator).toBe('safe');
    // Security property: the clear PIN is only in the (mock) device.
    expect(t.seen.some((j) => j.includes(PIN))).toBe(false);
    expect(JSON.stringify(t.events)).not.toContain(PIN);
    expect(JSON.stringify(await t.backend.logsList(1000))).not.toContain(PIN);
    expect((await t.backend.logsExport()).content).not.toContain(PIN);
  });

  it('progress events carry counts, never digits', async () => {
    const backend = new MockBackend({ stepMs: 0 });
    await backend.connect('sim-1');
    const p = await backend.pairingBegin('sim-1');
    const paired = backend.pairingConfirm(p.pairingId, () => undefined);
    await backend.qaKeyPress('sim-1', 'ok');
    await paired;
    const session = await backend.login('sim-1', 'C-1001', () => undefined);
    const prepared = await backend.paymentPrepare({ sessionId: session.sessionId, fromAccount: session.accounts[0], payeeName: 'A', payeeAccount: '6222080011223344', amountMinor: '100', currency: 'CNY', reference: '' });
    const progress: DeviceProgress[] = [];
    const done = backend.paymentApprove(prepared.paymentId, (e) => progress.push(e));
    await until(() => progress.some((e) => e.type === 'pin'));
    for (const k of ['9', '8', '7', '6', '5', '4'] as Key[]) await backend.qaKeyPress('sim-1', k);
    await backend.qaKeyPress('sim-1', 'ok');
    const r = await done;
    expect(r.outcome).toBe('declined'); // wrong PIN, legitimately declined
    expect(r.indicator).toBe('safe');
    const pins = progress.filter((e) => e.type === 'pin');
    expect(pins.map((e) => e.type === 'pin' && e.entered)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(JSON.stringify(progress)).not.toMatch(/987654/);
  });

  it('a corrupted bank answer makes the device say danger, and the UI shows that', async () => {
    const t = await setup();
    await pairAndLogin(t);
    await t.c.qaFault('sim-1', { kind: 'corrupt' });
    const result = await pay(t);
    expect(result.step === 'result' && result.result).toMatchObject({ outcome: 'refused', indicator: 'danger', reason: 'bankResponseInvalid' });
    expect(t.s().devices[0].indicator).toBe('danger');
  });

  it('a tampered device refuses the payment in danger state', async () => {
    const t = await setup();
    await pairAndLogin(t);
    t.c.editPayment({ payeeName: 'A', payeeAccount: '6222080011223344', amount: '1' });
    await t.c.reviewPayment();
    await t.c.qaTripTamper('sim-1');
    await t.c.approvePayment();
    const p = t.s().payment;
    expect(p.step === 'result' && p.result).toMatchObject({ outcome: 'refused', indicator: 'danger', reason: 'tampered' });
  });

  it('login refuses an unpaired device with a typed error', async () => {
    const t = await setup();
    await t.c.connect('sim-1');
    t.c.setLoginCustomer('C-1001');
    await t.c.login();
    const l = t.s().login;
    expect(l.step === 'form' && l.error?.kind).toBe('notPaired');
  });

  it('payment without login, and a bad form, never reach the bank', async () => {
    const t = await setup();
    await t.c.reviewPayment();
    const p = t.s().payment;
    expect(p.step === 'form' && p.error?.kind).toBe('notLoggedIn');
    await pairAndLogin(t);
    t.c.editPayment({ amount: '-1' });
    await t.c.reviewPayment();
    const q = t.s().payment;
    expect(q.step === 'form' && q.errors.amount).toBe('payment.err.amount');
  });

  it('cancelling on the device, and the user being too slow, are plain errors', async () => {
    const t = await setup();
    await pairAndLogin(t);
    t.c.editPayment({ payeeName: 'A', payeeAccount: '6222080011223344', amount: '1' });
    await t.c.reviewPayment();
    let approving = t.c.approvePayment();
    await until(() => { const p = t.s().payment; return p.step === 'device' && p.live.pin !== null; });
    await t.keys('1', 'cancel');
    await approving;
    let p = t.s().payment;
    expect(p.step === 'result' && p.error?.kind).toBe('userCancelled');
    t.c.newPayment();
    t.c.editPayment({ payeeName: 'A', payeeAccount: '6222080011223344', amount: '1' });
    await t.c.reviewPayment();
    await t.c.qaFault('sim-1', { kind: 'userTooSlow' });
    approving = t.c.approvePayment();
    await approving;
    p = t.s().payment;
    expect(p.step === 'result' && p.error?.kind).toBe('userTooSlow');
  });

  it('an out-of-band request is signed on the device and leaves the list', async () => {
    const t = await setup();
    await pairAndLogin(t);
    const id = t.s().confirmations[0].requestId;
    const approving = t.c.approveConfirmation(id);
    await until(() => t.s().confirm.live.stage === 'waitingForUser');
    await t.keys('ok');
    await approving;
    expect(t.s().confirm.result).toMatchObject({ outcome: 'signed', indicator: 'safe' });
    expect(t.s().confirmations).toHaveLength(0);
    await t.c.qaPushConfirmation('sim-1');
    expect(t.s().confirmations).toHaveLength(1); // arrived as a pushed event
  });
});

describe('a device\'s life', () => {
  it('logout says the bank ended the session and the device dropped its keys', async () => {
    const t = await setup();
    await pairAndLogin(t);
    await t.c.logout();
    expect(t.s().session).toBeNull();
    expect(t.s().loggedOut).toMatchObject({ bankEnded: true, deviceCleared: true });
    // The next login clears the note.
    await t.c.login();
    expect(t.s().session).not.toBeNull();
    expect(t.s().loggedOut).toBeNull();
  });

  it('a wipe the bank pushes ends the customer session and is shown in plain words', async () => {
    const t = await setup();
    await pairAndLogin(t);
    await t.c.staffSignIn('clerk-01', 'clerk-pass');
    await t.c.staffAction('revoke', { deviceId: 'sim-1' });
    expect(t.events.some((e) => e.type === 'bankCommand' && e.command === 'wipe' && e.applied)).toBe(true);
    expect(t.s().session).toBeNull();
    expect(t.s().bankCommands['sim-1']).toMatchObject({ command: 'wipe', applied: true });
    expect(t.s().bankCommands['sim-1']?.message).toContain('wiped');
  });
});

describe('staff flows', () => {
  it('needs sign-in; a clerk may not reset tamper; an operator may, then initialises again', async () => {
    const t = await setup();
    await t.c.connect('sim-1');
    await t.c.qaTripTamper('sim-1');
    await t.c.staffAction('tamperReset', { deviceId: 'sim-1' });
    expect(t.s().staffFlow.error?.kind).toBe('staffAuthRequired');
    await t.c.staffSignIn('clerk-01', 'nope');
    expect(t.s().staffFlow.error?.kind).toBe('staffAuthFailed');
    await t.c.staffSignIn('clerk-01', 'clerk-pass');
    await t.c.staffAction('tamperReset', { deviceId: 'sim-1' });
    expect(t.s().staffFlow.error?.kind).toBe('staffNotAllowed');
    await t.c.staffSignOut();
    await t.c.staffSignIn('op-01', 'operator-pass');
    expect(t.s().staff?.role).toBe('operator');
    await t.c.staffAction('tamperReset', { deviceId: 'sim-1' });
    expect(t.s().staffFlow.result?.device).toMatchObject({ tamper: 'clear', lifecycle: 'manufactured', indicator: 'off', customerId: null });
    await t.c.staffAction('initialise', { deviceId: 'sim-1' });
    expect(t.s().devices[0].lifecycle).toBe('initialised');
  });

  it('new device: initialise, enrol a PIN twice on the device, bind, then revoke and move', async () => {
    const t = await setup();
    await t.c.staffSignIn('op-01', 'operator-pass');
    await t.c.qaStart('Second');
    await t.c.connect('sim-2');
    await t.c.staffAction('initialise', { deviceId: 'sim-2' });
    await t.c.staffAction('bind', { deviceId: 'sim-2', customerId: 'C-1002' });
    expect(t.s().staffFlow.error?.kind).toBe('notEnrolled');
    const enrol = t.c.staffAction('enrol', { deviceId: 'sim-2', customerId: 'C-1002' });
    const press = async (...ks: Key[]) => {
      for (const k of ks) await t.c.keyPress('sim-2', k);
    };
    await until(() => t.s().staffFlow.live.pin !== null);
    await press('2', '4', '6', '8', '1', '0', 'ok');
    await until(() => t.s().staffFlow.live.lines[0] === 'Repeat the PIN');
    await press('2', '4', '6', '8', '1', '0', 'ok');
    await enrol;
    expect(t.s().staffFlow.result?.action).toBe('enrol');
    await t.c.staffAction('bind', { deviceId: 'sim-2', customerId: 'C-1002' });
    expect(t.s().devices.find((d) => d.deviceId === 'sim-2')).toMatchObject({ lifecycle: 'bound', customerId: 'C-1002' });
    expect(t.seen.some((j) => j.includes('246810'))).toBe(false);
    // Lost device: move C-1001 from sim-1 to a third, initialised device.
    await t.c.qaStart('Third');
    await t.c.connect('sim-3');
    await t.c.staffAction('initialise', { deviceId: 'sim-3' });
    await t.c.staffAction('rebind', { deviceId: 'sim-1', toDeviceId: 'sim-3' });
    expect(t.s().devices.find((d) => d.deviceId === 'sim-1')?.lifecycle).toBe('revoked');
    expect(t.s().devices.find((d) => d.deviceId === 'sim-3')).toMatchObject({ lifecycle: 'bound', customerId: 'C-1001' });
  });
});

describe('QA faults', () => {
  it('busy, disconnect and drop behave as documented', async () => {
    const t = await setup();
    await t.c.connect('sim-1');
    await t.c.qaFault('sim-1', { kind: 'busy' });
    await t.c.pair();
    expect(t.s().pairing).toMatchObject({ step: 'start', error: { kind: 'deviceBusy' } });
    await t.c.qaFault('sim-1', { kind: 'disconnect' });
    await t.c.pair();
    expect(t.s().pairing).toMatchObject({ step: 'start', error: { kind: 'deviceDisconnected' } });
    expect(t.s().devices[0].connected).toBe(false);
    await t.c.connect('sim-1');
    await t.c.qaFault('sim-1', { kind: 'drop' });
    const pairing = t.c.pair();
    await until(() => t.s().pairing.step === 'compare');
    await t.keys('ok');
    await pairing;
    expect(t.s().pairing.step).toBe('done'); // the lost packet was retransmitted
    expect(t.s().logs.some((l) => l.message.includes('retransmitted'))).toBe(true);
  });

  it('keys of a mock device are logged without the digit', async () => {
    const t = await setup();
    await t.c.connect('sim-1');
    await t.keys('7', 'ok');
    const msgs = t.s().logs.map((l) => l.message);
    expect(msgs).toContain('PB-SIM-0001: key pressed (a digit)');
    expect(msgs).toContain('PB-SIM-0001: key pressed (OK)');
    expect(msgs.some((m) => m.includes('(7)'))).toBe(false);
  });
});

describe('settings and logs', () => {
  it('validates the bank URL and CA, and switches language', async () => {
    const t = await setup();
    const base = t.s().settings!;
    expect(await t.c.saveSettings({ ...base, bankUrl: 'http://bank.example' })).toBe(false);
    expect(t.s().notice?.error?.kind).toBe('invalidInput');
    expect(await t.c.saveSettings({ ...base, bankUrl: 'https://bank.example/api', bankCaPem: 'nope' })).toBe(false);
    expect(await t.c.saveSettings({ ...base, bankUrl: 'http://127.0.0.1:8443', language: 'zh-CN', theme: 'dark' })).toBe(true);
    expect(t.s()).toMatchObject({ lang: 'zh-CN', theme: 'dark' });
    t.c.setLanguage('en');
    await until(() => t.s().settings?.language === 'en');
  });

  it('export redacts key-like tokens and reports how many', async () => {
    const t = await setup();
    await pairAndLogin(t);
    const file = await t.c.exportLogs();
    expect(file?.content).toContain('[redacted]');
    expect(file?.content).not.toMatch(/D0144P0AE00E0000/);
    expect(t.s().notice).toMatchObject({ screen: 'logs', info: 'logs.exported', infoParams: { redactions: 1 } });
  });
});
