// The one interface the screens use. Each method is one IPC command (its name is in the comment)
// and rejects with an AppError `{ kind, message }`.
import type {
  BankDevice,
  LossReport,
  PinChangeResult,
  WipeResult,
  SerialAction,
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

export type ProgressSink = (ev: DeviceProgress) => void;
export type EventSink = (ev: AppEvent) => void;
export type Unsubscribe = () => void;

export interface Backend {
  /** app_info */
  appInfo(): Promise<AppInfo>;
  /** events_subscribe { onEvent: Channel<AppEvent> } */
  subscribe(sink: EventSink): Promise<Unsubscribe>;

  /** device_list */
  listDevices(): Promise<DeviceStatus[]>;
  /** key_store_status — what the pairing key store needs (no OS key store: a passphrase) */
  keyStoreStatus(): Promise<PassphraseNeed>;
  /** key_store_unlock { passphrase } — opens the store with it, or seals the first pairing under it */
  keyStoreUnlock(passphrase: string): Promise<PassphraseNeed>;
  /** device_connect { deviceId } */
  connect(deviceId: string): Promise<DeviceStatus>;
  /** device_disconnect { deviceId } */
  disconnect(deviceId: string): Promise<void>;
  /** device_status { deviceId } */
  deviceStatus(deviceId: string): Promise<DeviceStatus>;

  /** pairing_begin { deviceId } */
  pairingBegin(deviceId: string): Promise<PairingStart>;
  /** pairing_confirm { pairingId, onProgress } — the user confirms on the device */
  pairingConfirm(pairingId: string, onProgress: ProgressSink): Promise<DeviceStatus>;
  /** pairing_cancel { pairingId } */
  pairingCancel(pairingId: string): Promise<void>;

  /** login { deviceId, customerId, onProgress } */
  login(deviceId: string, customerId: string, onProgress: ProgressSink): Promise<LoginSession>;
  /** device_report_lost { serial, customerId, code } — the customer's loss report: no login, no staff */
  reportLost(serial: string, customerId: string, code: string): Promise<LossReport>;
  /** staff_device_lookup { serial } — the bank's record of a PIN pad that need not be here */
  staffDeviceLookup(serial: string): Promise<BankDevice>;
  /** staff_by_serial { serial, action } — revoke, lock, unlock or unpair with no PIN pad here */
  staffBySerial(serial: string, action: SerialAction): Promise<BankDevice>;
  /** staff_rebind_by_serial { fromSerial, toDeviceId, onProgress } — the customer of a PIN pad
   *  that is not here moves to the one here (PIN chosen on its keypad); the old one is revoked */
  staffRebindBySerial(fromSerial: string, toDeviceId: string, onProgress: ProgressSink): Promise<StaffActionResult>;
  /** pin_change { sessionId, onProgress } — current PIN, new PIN twice, all on the PIN pad */
  pinChange(sessionId: string, onProgress: ProgressSink): Promise<PinChangeResult>;
  /** device_wipe { deviceId, onProgress } — the owner confirms on the keypad; the bank is told */
  deviceWipe(deviceId: string, onProgress: ProgressSink): Promise<WipeResult>;

  /** logout { sessionId } — ends the session at the bank and on the device; says what ended where */
  logout(sessionId: string): Promise<LogoutResult>;

  /** payment_prepare { request } */
  paymentPrepare(request: PaymentRequest): Promise<PreparedPayment>;
  /** payment_approve { paymentId, onProgress } — PIN and approval happen on the device */
  paymentApprove(paymentId: string, onProgress: ProgressSink): Promise<PaymentResult>;
  /** payment_cancel { paymentId } */
  paymentCancel(paymentId: string): Promise<void>;
  /** payment_history { sessionId, before } — the customer's payments, newest first, a page at a time */
  paymentHistory(sessionId: string, before: string | null): Promise<PaymentHistory>;

  /** confirmations_list */
  confirmationsList(): Promise<ConfirmationRequest[]>;
  /** confirmation_approve { requestId, deviceId, onProgress } */
  confirmationApprove(requestId: string, deviceId: string, onProgress: ProgressSink): Promise<ConfirmationResult>;

  /** staff_sign_in { staffId, password } */
  staffSignIn(staffId: string, password: string): Promise<StaffSession>;
  /** staff_sign_out */
  staffSignOut(): Promise<void>;
  /** staff_initialise { deviceId, onProgress } */
  staffInitialise(deviceId: string, onProgress: ProgressSink): Promise<StaffActionResult>;
  /** staff_enrol { deviceId, customerId, onProgress } — the customer chooses the PIN on the device, twice */
  staffEnrol(deviceId: string, customerId: string, onProgress: ProgressSink): Promise<StaffActionResult>;
  /** staff_bind { deviceId, customerId } */
  staffBind(deviceId: string, customerId: string): Promise<StaffActionResult>;
  /** staff_revoke { deviceId } */
  staffRevoke(deviceId: string): Promise<StaffActionResult>;
  /** staff_rebind { fromDeviceId, toDeviceId } — move the customer to a new device */
  staffRebind(fromDeviceId: string, toDeviceId: string): Promise<StaffActionResult>;
  /** staff_tamper_reset { deviceId } — operator authority; the device must be initialised again */
  staffTamperReset(deviceId: string): Promise<StaffActionResult>;

  /** qa_mock_start { name } */
  qaMockStart(name: string): Promise<DeviceStatus>;
  /** qa_mock_stop { deviceId } */
  qaMockStop(deviceId: string): Promise<void>;
  /** qa_key_press { deviceId, key, promptId } — goes straight to the mock device, for the
   *  prompt the user saw (dropped if it has gone; without one: whatever prompt is up) */
  qaKeyPress(deviceId: string, key: Key, promptId?: number): Promise<void>;
  /** qa_trip_tamper { deviceId } */
  qaTripTamper(deviceId: string): Promise<void>;
  /** qa_inject_fault { deviceId, fault } */
  qaInjectFault(deviceId: string, fault: Fault): Promise<void>;
  /** qa_clear_faults { deviceId } */
  qaClearFaults(deviceId: string): Promise<void>;
  /** qa_push_confirmation { deviceId } — the sandbox bank pushes an out-of-band request */
  qaPushConfirmation(deviceId: string): Promise<ConfirmationRequest>;

  /** logs_list { limit } */
  logsList(limit: number): Promise<LogEntry[]>;
  /** logs_export */
  logsExport(): Promise<LogExport>;

  /** settings_get */
  settingsGet(): Promise<Settings>;
  /** settings_set { settings } */
  settingsSet(settings: Settings): Promise<Settings>;
}
