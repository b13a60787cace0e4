// The Backend over Tauri IPC: each method is one `invoke` of the command named in backend.ts.
// Long device operations take a `Channel<DeviceProgress>` as `onProgress`; app-wide events come
// over the `Channel<AppEvent>` handed to `events_subscribe`.
import { Channel, invoke } from '@tauri-apps/api/core';
import type { Backend, EventSink, ProgressSink, Unsubscribe } from './backend';
import type { Command } from './commands';
import { toAppError } from './errors';
import type {
  AppEvent,
  AppInfo,
  ConfirmationRequest,
  ConfirmationResult,
  DeviceProgress,
  DeviceStatus,
  Fault,
  Key,
  LogEntry,
  LogExport,
  BankDevice,
  LossReport,
  PinChangeResult,
  SerialAction,
  WipeResult,
  LoginSession,
  LogoutResult,
  PaymentHistory,
  PairingStart,
  PassphraseNeed,
  PaymentRequest,
  PaymentResult,
  PreparedPayment,
  Settings,
  StaffActionResult,
  StaffSession,
} from './types';

// Only the command table's names (./commands.ts, generated): a renamed or removed command
// fails the typecheck here.
async function call<T>(cmd: Command, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toAppError(e);
  }
}

function progress(sink: ProgressSink): Channel<DeviceProgress> {
  return new Channel<DeviceProgress>((ev) => sink(ev));
}

export function isTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

export class TauriBackend implements Backend {
  appInfo(): Promise<AppInfo> {
    return call('app_info');
  }

  async subscribe(sink: EventSink): Promise<Unsubscribe> {
    let live = true;
    const onEvent = new Channel<AppEvent>((ev) => {
      if (live) sink(ev);
    });
    await call<null>('events_subscribe', { onEvent });
    return () => {
      live = false;
    };
  }

  listDevices(): Promise<DeviceStatus[]> {
    return call('device_list');
  }
  keyStoreStatus(): Promise<PassphraseNeed> {
    return call('key_store_status');
  }
  keyStoreUnlock(passphrase: string): Promise<PassphraseNeed> {
    return call('key_store_unlock', { passphrase });
  }
  connect(deviceId: string): Promise<DeviceStatus> {
    return call('device_connect', { deviceId });
  }
  async disconnect(deviceId: string): Promise<void> {
    await call('device_disconnect', { deviceId });
  }
  deviceStatus(deviceId: string): Promise<DeviceStatus> {
    return call('device_status', { deviceId });
  }

  pairingBegin(deviceId: string): Promise<PairingStart> {
    return call('pairing_begin', { deviceId });
  }
  pairingConfirm(pairingId: string, onProgress: ProgressSink): Promise<DeviceStatus> {
    return call('pairing_confirm', { pairingId, onProgress: progress(onProgress) });
  }
  async pairingCancel(pairingId: string): Promise<void> {
    await call('pairing_cancel', { pairingId });
  }

  login(deviceId: string, customerId: string, onProgress: ProgressSink): Promise<LoginSession> {
    return call('login', { deviceId, customerId, onProgress: progress(onProgress) });
  }
  reportLost(serial: string, customerId: string, code: string): Promise<LossReport> {
    return call('device_report_lost', { serial, customerId, code });
  }
  staffDeviceLookup(serial: string): Promise<BankDevice> {
    return call('staff_device_lookup', { serial });
  }
  staffBySerial(serial: string, action: SerialAction): Promise<BankDevice> {
    return call('staff_by_serial', { serial, action });
  }
  staffRebindBySerial(fromSerial: string, toDeviceId: string, onProgress: ProgressSink): Promise<StaffActionResult> {
    return call('staff_rebind_by_serial', { fromSerial, toDeviceId, onProgress: progress(onProgress) });
  }
  pinChange(sessionId: string, onProgress: ProgressSink): Promise<PinChangeResult> {
    return call('pin_change', { sessionId, onProgress: progress(onProgress) });
  }
  deviceWipe(deviceId: string, onProgress: ProgressSink): Promise<WipeResult> {
    return call('device_wipe', { deviceId, onProgress: progress(onProgress) });
  }

  logout(sessionId: string): Promise<LogoutResult> {
    return call('logout', { sessionId });
  }

  paymentPrepare(request: PaymentRequest): Promise<PreparedPayment> {
    return call('payment_prepare', { request });
  }
  paymentApprove(paymentId: string, onProgress: ProgressSink): Promise<PaymentResult> {
    return call('payment_approve', { paymentId, onProgress: progress(onProgress) });
  }
  async paymentCancel(paymentId: string): Promise<void> {
    await call('payment_cancel', { paymentId });
  }

  paymentHistory(sessionId: string, before: string | null): Promise<PaymentHistory> {
    return call('payment_history', { sessionId, before });
  }

  confirmationsList(): Promise<ConfirmationRequest[]> {
    return call('confirmations_list');
  }
  confirmationApprove(requestId: string, deviceId: string, onProgress: ProgressSink): Promise<ConfirmationResult> {
    return call('confirmation_approve', { requestId, deviceId, onProgress: progress(onProgress) });
  }

  staffSignIn(staffId: string, password: string): Promise<StaffSession> {
    return call('staff_sign_in', { staffId, password });
  }
  async staffSignOut(): Promise<void> {
    await call('staff_sign_out');
  }
  staffInitialise(deviceId: string, onProgress: ProgressSink): Promise<StaffActionResult> {
    return call('staff_initialise', { deviceId, onProgress: progress(onProgress) });
  }
  staffEnrol(deviceId: string, customerId: string, onProgress: ProgressSink): Promise<StaffActionResult> {
    return call('staff_enrol', { deviceId, customerId, onProgress: progress(onProgress) });
  }
  staffBind(deviceId: string, customerId: string): Promise<StaffActionResult> {
    return call('staff_bind', { deviceId, customerId });
  }
  staffRevoke(deviceId: string): Promise<StaffActionResult> {
    return call('staff_revoke', { deviceId });
  }
  staffRebind(fromDeviceId: string, toDeviceId: string): Promise<StaffActionResult> {
    return call('staff_rebind', { fromDeviceId, toDeviceId });
  }
  staffTamperReset(deviceId: string): Promise<StaffActionResult> {
    return call('staff_tamper_reset', { deviceId });
  }

  qaMockStart(name: string): Promise<DeviceStatus> {
    return call('qa_mock_start', { name });
  }
  async qaMockStop(deviceId: string): Promise<void> {
    await call('qa_mock_stop', { deviceId });
  }
  async qaKeyPress(deviceId: string, key: Key, promptId?: number): Promise<void> {
    await call('qa_key_press', { deviceId, key, promptId });
  }
  async qaTripTamper(deviceId: string): Promise<void> {
    await call('qa_trip_tamper', { deviceId });
  }
  async qaInjectFault(deviceId: string, fault: Fault): Promise<void> {
    await call('qa_inject_fault', { deviceId, fault });
  }
  async qaClearFaults(deviceId: string): Promise<void> {
    await call('qa_clear_faults', { deviceId });
  }
  qaPushConfirmation(deviceId: string): Promise<ConfirmationRequest> {
    return call('qa_push_confirmation', { deviceId });
  }

  logsList(limit: number): Promise<LogEntry[]> {
    return call('logs_list', { limit });
  }
  logsExport(): Promise<LogExport> {
    return call('logs_export');
  }

  settingsGet(): Promise<Settings> {
    return call('settings_get');
  }
  settingsSet(settings: Settings): Promise<Settings> {
    return call('settings_set', { settings });
  }
}
