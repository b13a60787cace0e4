import { describe, expect, it } from 'vitest';
import type { DeviceStatus, LogEntry } from '../src/api/types';
import { activeDevice, applyEvent, applyProgress, emptyPaymentForm, IDLE_LIVE, initialState, LOG_KEEP, resultTone, upsertDevice, validatePaymentForm, type State } from '../src/state';

const dev = (id: string, over: Partial<DeviceStatus> = {}): DeviceStatus => ({
  deviceId: id,
  name: id,
  transport: 'usb',
  serial: `S-${id}`,
  connected: false,
  lifecycle: 'bound',
  tamper: 'clear',
  lock: 'unlocked',
  indicator: 'off',
  paired: false,
  customerId: null,
  firmware: { version: '1', hash: 'ab' },
  genuine: 'unchecked',
  genuineFailures: [],
  mock: false,
  ...over,
});

describe('progress events', () => {
  it('accumulate into what the device is showing', () => {
    let s = IDLE_LIVE;
    s = applyProgress(s, { type: 'stage', stage: 'sendingToDevice' });
    s = applyProgress(s, { type: 'display', lines: ['Pay CNY 1.00', 'Enter PIN'] });
    s = applyProgress(s, { type: 'stage', stage: 'waitingForUser' });
    s = applyProgress(s, { type: 'pin', entered: 0, length: 6 });
    s = applyProgress(s, { type: 'pin', entered: 4, length: 6 });
    s = applyProgress(s, { type: 'indicator', indicator: 'safe' });
    expect(s).toEqual({ stage: 'waitingForUser', lines: ['Pay CNY 1.00', 'Enter PIN'], pin: { entered: 4, length: 6 }, indicator: 'safe' });
    expect(IDLE_LIVE).toEqual({ stage: null, lines: [], pin: null, indicator: null }); // not mutated
  });
});

describe('app events', () => {
  it('replace the device list and drop a chosen device that went away', () => {
    let s: State = { ...initialState(), activeDeviceId: 'b' };
    s = applyEvent(s, { type: 'devices', devices: [dev('a'), dev('b')] });
    expect(s.activeDeviceId).toBe('b');
    s = applyEvent(s, { type: 'devices', devices: [dev('a')] });
    expect(s.activeDeviceId).toBeNull();
  });
  it('follow an unplugged device: reconnecting, then back with or without the session', () => {
    const session = { sessionId: 's1', customerId: 'C-1001', customerName: 'Li Wei', deviceId: 'usb:1-1', accounts: [] };
    let s: State = { ...initialState(), session };
    s = applyEvent(s, { type: 'deviceLink', deviceId: 'usb:1-1', link: 'reconnecting', message: 'unplugged' });
    expect(s.links).toEqual({ 'usb:1-1': { link: 'reconnecting', message: 'unplugged' } });
    expect(s.session).toEqual(session);
    s = applyEvent(s, { type: 'deviceLink', deviceId: 'usb:1-1', link: 'reconnected', message: 'back' });
    expect(s.links).toEqual({});
    expect(s.session).toEqual(session);
    s = applyEvent(s, { type: 'deviceLink', deviceId: 'usb:1-1', link: 'sessionLost', message: 'log in again' });
    expect(s.links['usb:1-1']?.link).toBe('sessionLost');
    expect(s.session).toBeNull();
  });
  it('a bank command is kept per device; a wipe or lock on the session\'s device ends the session', () => {
    const session = { sessionId: 's1', customerId: 'C-1001', customerName: 'Li Wei', deviceId: 'usb:1-1', accounts: [] };
    let s: State = { ...initialState(), session };
    const command = {
      type: 'bankCommand' as const,
      deviceId: 'usb:1-2',
      serial: 'PB-2',
      command: 'lock' as const,
      applied: true,
      lifecycle: 'bound' as const,
      lock: 'locked' as const,
      sessionEnded: true,
      message: 'Your bank locked this PIN pad (PB-2)',
    };
    // Another device's lock leaves this session alone.
    s = applyEvent(s, command);
    expect(s.session).toEqual(session);
    expect(s.bankCommands['usb:1-2']).toEqual({ command: 'lock', applied: true, message: 'Your bank locked this PIN pad (PB-2)' });
    s = applyEvent(s, { ...command, deviceId: 'usb:1-1', command: 'wipe', lifecycle: 'revoked', message: 'wiped' });
    expect(s.session).toBeNull();
    expect(s.bankCommands['usb:1-1']?.command).toBe('wipe');
  });
  it('keep each device display, dedupe pushed requests, cap the log', () => {
    let s = initialState();
    s = applyEvent(s, { type: 'deviceDisplay', deviceId: 'a', lines: ['Ready'], promptId: null });
    expect(s.displays).toEqual({ a: ['Ready'] });
    expect(s.prompts).toEqual({ a: null });
    s = applyEvent(s, { type: 'deviceDisplay', deviceId: 'a', lines: ['Pay CNY 1.00', 'PIN:'], promptId: 7 });
    expect(s.prompts).toEqual({ a: 7 });
    const req = { requestId: 'r1', orderId: 'O', payerAccount: '1', payeeName: 'P', payeeAccount: '2', amountMinor: '1', currency: 'CNY', receivedAt: '' };
    s = applyEvent(s, { type: 'confirmationPushed', request: req });
    const again = applyEvent(s, { type: 'confirmationPushed', request: req });
    expect(again).toBe(s);
    expect(s.confirmations).toHaveLength(1);
    for (let i = 0; i < LOG_KEEP + 10; i++) {
      const entry: LogEntry = { seq: i, time: '', level: 'info', source: 'app', message: `m${i}` };
      s = applyEvent(s, { type: 'log', entry });
    }
    expect(s.logs).toHaveLength(LOG_KEEP);
    expect(s.logs.at(-1)!.seq).toBe(LOG_KEEP + 9);
  });
});

describe('active device', () => {
  it('is the chosen one, else the first connected one', () => {
    const devices = [dev('a'), dev('b', { connected: true }), dev('c', { connected: true })];
    expect(activeDevice({ devices, activeDeviceId: null })?.deviceId).toBe('b');
    expect(activeDevice({ devices, activeDeviceId: 'a' })?.deviceId).toBe('a');
    expect(activeDevice({ devices, activeDeviceId: 'zz' })?.deviceId).toBe('b');
    expect(activeDevice({ devices: [dev('a')], activeDeviceId: null })).toBeNull();
  });
  it('is updated in place by a fresher status', () => {
    const list = [dev('a'), dev('b')];
    const next = upsertDevice(list, dev('b', { paired: true }));
    expect(next.map((d) => d.paired)).toEqual([false, true]);
    expect(list[1].paired).toBe(false);
    expect(upsertDevice(list, dev('c'))).toHaveLength(3);
  });
});

describe('payment form', () => {
  const ok = { ...emptyPaymentForm('6222'), payeeName: 'Zhang San', payeeAccount: '6222 0800 1234 8888', amount: '120.50' };
  it('accepts a good form and gives the amount in minor units', () => {
    expect(validatePaymentForm(ok)).toEqual({ ok: true, amountMinor: '12050' });
  });
  it('names each bad field', () => {
    const r = validatePaymentForm({ ...ok, fromAccount: '', payeeName: ' ', payeeAccount: '12-34', amount: '0', reference: 'x'.repeat(36) });
    expect(r).toEqual({
      ok: false,
      errors: {
        fromAccount: 'payment.err.fromAccount',
        payeeName: 'payment.err.payeeName',
        payeeAccount: 'payment.err.payeeAccount',
        amount: 'payment.err.amount',
        reference: 'payment.err.reference',
      },
    });
  });
});

describe('result tone', () => {
  it('follows the outcome: approved green, declined amber, blocked or refused red, a no neutral', () => {
    expect(resultTone({ indicator: 'safe', outcome: 'approved' })).toBe('safe');
    // The outcome, not the device's light: a safe device that declined is not a green result.
    expect(resultTone({ indicator: 'safe', outcome: 'declined', reason: 'wrongPin' })).toBe('warn');
    expect(resultTone({ indicator: 'safe', outcome: 'declined', reason: 'pinBlocked' })).toBe('danger');
    expect(resultTone({ indicator: 'safe', outcome: 'signed' })).toBe('safe');
    expect(resultTone({ indicator: 'safe', outcome: 'rejected' })).toBe('neutral');
    // A confirmation the customer said no to on the device comes back declined, userRejected.
    expect(resultTone({ indicator: 'safe', outcome: 'declined', reason: 'userRejected' })).toBe('neutral');
    expect(resultTone({ indicator: 'danger', outcome: 'refused' })).toBe('danger');
    expect(resultTone({ indicator: 'off', outcome: 'refused' })).toBe('danger');
    expect(resultTone({ indicator: 'off', outcome: 'rejected' })).toBe('neutral');
  });
});
