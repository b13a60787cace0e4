// TauriBackend against Tauri's own IPC mock: the command names and argument shapes the Rust side
// must implement, progress over a Channel, and errors mapped to AppError.
import { Channel } from '@tauri-apps/api/core';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import { TauriBackend, isTauri } from '../src/api/tauri';
import type { DeviceProgress } from '../src/api/types';

type Call = { cmd: string; args: Record<string, unknown> | undefined };

function send(channel: unknown, index: number, message: unknown): void {
  const id = (channel as Channel<unknown>).id;
  (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__.runCallback(id, { index, message });
}

afterEach(() => clearMocks());

describe('TauriBackend', () => {
  it('is chosen only inside Tauri', () => {
    clearMocks();
    delete (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__;
    expect(isTauri()).toBe(false);
    mockIPC(() => null);
    expect(isTauri()).toBe(true);
  });

  it('invokes the documented command names with camelCase arguments', async () => {
    const calls: Call[] = [];
    mockIPC((cmd, args) => {
      calls.push({ cmd, args: args as Record<string, unknown> });
      return null;
    });
    const b = new TauriBackend();
    await b.appInfo();
    await b.listDevices();
    await b.connect('usb-1');
    await b.disconnect('usb-1');
    await b.deviceStatus('usb-1');
    await b.pairingBegin('usb-1');
    await b.pairingCancel('pair-1');
    await b.logout('sess-1');
    const req = { sessionId: 's', fromAccount: 'a', payeeName: 'p', payeeAccount: '12345678', amountMinor: '100', currency: 'CNY', reference: '' };
    await b.paymentPrepare(req);
    await b.paymentCancel('pay-1');
    await b.paymentHistory('sess-1', null);
    await b.paymentHistory('sess-1', '17.tx-9');
    await b.confirmationsList();
    await b.staffSignIn('op-01', 'pw');
    await b.staffSignOut();
    await b.staffBind('usb-1', 'C-1');
    await b.staffRevoke('usb-1');
    await b.staffRebind('usb-1', 'usb-2');
    await b.staffTamperReset('usb-1');
    await b.staffDeviceLookup('PP-1');
    await b.staffBySerial('PP-1', 'lock');
    await b.reportLost('PP-1', 'C-1', 'code');
    await b.qaMockStart('Sim');
    await b.qaMockStop('sim-2');
    await b.qaKeyPress('sim-2', 'ok');
    await b.qaTripTamper('sim-2');
    await b.qaInjectFault('sim-2', { kind: 'delay', ms: 300 });
    await b.qaClearFaults('sim-2');
    await b.qaPushConfirmation('sim-2');
    await b.logsList(50);
    await b.logsExport();
    await b.settingsGet();
    await b.settingsSet({ bankUrl: '', bankCaPem: null, language: 'zh-CN', theme: 'dark', staffMode: false, firstRunDone: true });
    expect(calls).toEqual([
      { cmd: 'app_info', args: {} },
      { cmd: 'device_list', args: {} },
      { cmd: 'device_connect', args: { deviceId: 'usb-1' } },
      { cmd: 'device_disconnect', args: { deviceId: 'usb-1' } },
      { cmd: 'device_status', args: { deviceId: 'usb-1' } },
      { cmd: 'pairing_begin', args: { deviceId: 'usb-1' } },
      { cmd: 'pairing_cancel', args: { pairingId: 'pair-1' } },
      { cmd: 'logout', args: { sessionId: 'sess-1' } },
      { cmd: 'payment_prepare', args: { request: req } },
      { cmd: 'payment_cancel', args: { paymentId: 'pay-1' } },
      { cmd: 'payment_history', args: { sessionId: 'sess-1', before: null } },
      { cmd: 'payment_history', args: { sessionId: 'sess-1', before: '17.tx-9' } },
      { cmd: 'confirmations_list', args: {} },
      { cmd: 'staff_sign_in', args: { staffId: 'op-01', password: 'pw' } },
      { cmd: 'staff_sign_out', args: {} },
      { cmd: 'staff_bind', args: { deviceId: 'usb-1', customerId: 'C-1' } },
      { cmd: 'staff_revoke', args: { deviceId: 'usb-1' } },
      { cmd: 'staff_rebind', args: { fromDeviceId: 'usb-1', toDeviceId: 'usb-2' } },
      { cmd: 'staff_tamper_reset', args: { deviceId: 'usb-1' } },
      { cmd: 'staff_device_lookup', args: { serial: 'PP-1' } },
      { cmd: 'staff_by_serial', args: { serial: 'PP-1', action: 'lock' } },
      { cmd: 'device_report_lost', args: { serial: 'PP-1', customerId: 'C-1', code: 'code' } },
      { cmd: 'qa_mock_start', args: { name: 'Sim' } },
      { cmd: 'qa_mock_stop', args: { deviceId: 'sim-2' } },
      { cmd: 'qa_key_press', args: { deviceId: 'sim-2', key: 'ok' } },
      { cmd: 'qa_trip_tamper', args: { deviceId: 'sim-2' } },
      { cmd: 'qa_inject_fault', args: { deviceId: 'sim-2', fault: { kind: 'delay', ms: 300 } } },
      { cmd: 'qa_clear_faults', args: { deviceId: 'sim-2' } },
      { cmd: 'qa_push_confirmation', args: { deviceId: 'sim-2' } },
      { cmd: 'logs_list', args: { limit: 50 } },
      { cmd: 'logs_export', args: {} },
      { cmd: 'settings_get', args: {} },
      { cmd: 'settings_set', args: { settings: { bankUrl: '', bankCaPem: null, language: 'zh-CN', theme: 'dark', staffMode: false, firstRunDone: true } } },
    ]);
  });

  it('long operations pass a Channel as onProgress and deliver its events in order', async () => {
    const seen: string[] = [];
    mockIPC((cmd, args) => {
      const a = args as Record<string, unknown>;
      seen.push(`${cmd}:${Object.keys(a).join(',')}`);
      expect(a.onProgress).toBeInstanceOf(Channel);
      // The Rust side may deliver out of order; the Channel reorders by index.
      send(a.onProgress, 1, { type: 'pin', entered: 1, length: 6 });
      send(a.onProgress, 0, { type: 'display', lines: ['Enter PIN'] });
      if (cmd === 'payment_approve') return { paymentId: a.paymentId, outcome: 'approved', indicator: 'safe', reason: 'none', deviceLines: ['Approved'], bankReference: 'J1' };
      return { ok: true };
    });
    const b = new TauriBackend();
    const progress: DeviceProgress[] = [];
    const sink = (e: DeviceProgress) => progress.push(e);
    const r = await b.paymentApprove('pay-9', sink);
    expect(r.outcome).toBe('approved');
    expect(progress).toEqual([
      { type: 'display', lines: ['Enter PIN'] },
      { type: 'pin', entered: 1, length: 6 },
    ]);
    await b.pairingConfirm('pair-1', sink);
    await b.login('usb-1', 'C-1001', sink);
    await b.confirmationApprove('req-1', 'usb-1', sink);
    await b.staffInitialise('usb-1', sink);
    await b.staffEnrol('usb-1', 'C-1002', sink);
    await b.staffRebindBySerial('PP-1', 'usb-2', sink);
    await b.pinChange('sess-1', sink);
    await b.deviceWipe('usb-1', sink);
    expect(seen).toEqual([
      'payment_approve:paymentId,onProgress',
      'pairing_confirm:pairingId,onProgress',
      'login:deviceId,customerId,onProgress',
      'confirmation_approve:requestId,deviceId,onProgress',
      'staff_initialise:deviceId,onProgress',
      'staff_enrol:deviceId,customerId,onProgress',
      'staff_rebind_by_serial:fromSerial,toDeviceId,onProgress',
      'pin_change:sessionId,onProgress',
      'device_wipe:deviceId,onProgress',
    ]);
  });

  it('app events arrive over the events_subscribe channel until unsubscribed', async () => {
    let channel: unknown;
    mockIPC((cmd, args) => {
      if (cmd === 'events_subscribe') channel = (args as Record<string, unknown>).onEvent;
      return null;
    });
    const b = new TauriBackend();
    const got: unknown[] = [];
    const stop = await b.subscribe((e) => got.push(e));
    send(channel, 0, { type: 'deviceDisplay', deviceId: 'usb-1', lines: ['Ready'] });
    stop();
    send(channel, 1, { type: 'deviceDisplay', deviceId: 'usb-1', lines: ['Later'] });
    expect(got).toEqual([{ type: 'deviceDisplay', deviceId: 'usb-1', lines: ['Ready'] }]);
  });

  it('rejects with an AppError, whatever shape the error had', async () => {
    mockIPC((cmd) => {
      if (cmd === 'device_connect') throw { kind: 'deviceBusy', message: 'BUSY on channel 2' };
      if (cmd === 'device_list') throw 'unexpected';
      return Promise.reject({ kind: 'somethingNew', message: 'x' });
    });
    const b = new TauriBackend();
    await expect(b.connect('usb-1')).rejects.toEqual({ kind: 'deviceBusy', message: 'BUSY on channel 2' });
    await expect(b.listDevices()).rejects.toEqual({ kind: 'internal', message: 'unexpected' });
    await expect(b.settingsGet()).rejects.toEqual({ kind: 'internal', message: 'somethingNew: x' });
  });
});
