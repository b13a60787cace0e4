// The IPC contract between the screens and the desktop shell (src-tauri).
//
// Every shape here is plain JSON. The Rust side serialises with serde `rename_all = "camelCase"`
// for struct fields and `tag = "type"` (events) / `tag = "kind"` (faults, errors) for enums.
// ui/README.md lists the commands; keep the two in step.
//
// The PC never sees the PIN: no type in this file carries PIN digits. PIN entry is reported
// only as a count of digits entered on the device's own keypad.

export type Transport = 'usb' | 'ble' | 'sim';

/** Where the device is in its life, as the device reports it. */
export type Lifecycle = 'manufactured' | 'initialised' | 'bound' | 'revoked';
export type TamperState = 'clear' | 'tampered';
export type LockState = 'unlocked' | 'locked';
/** The security indicator LED, mirrored exactly as the device reports it. The app never sets it. */
export type Indicator = 'off' | 'safe' | 'danger';

export interface Firmware {
  version: string;
  /** Hex SHA-256 of the firmware image, as reported (and signed) by the device. */
  hash: string;
}

export interface DeviceStatus {
  deviceId: string;
  name: string;
  transport: Transport;
  serial: string;
  connected: boolean;
  lifecycle: Lifecycle;
  tamper: TamperState;
  lock: LockState;
  indicator: Indicator;
  /** This app holds a pairing key for the device. */
  paired: boolean;
  /** Customer the device is bound to at the bank, if any. */
  customerId: string | null;
  firmware: Firmware;
  /** A software PIN pad (QA): its keypad can be driven from the app. */
  mock: boolean;
}

// ---------------------------------------------------------------- per-session progress events

/** What a long device operation is doing right now. */
export type Stage =
  | 'contactingBank'
  | 'sendingToDevice'
  | 'waitingForUser'
  | 'sendingToBank'
  | 'verifyingResponse'
  | 'done';

/** Sent over the `onProgress` channel of a long device operation (tag: `type`). */
export type DeviceProgress =
  | { type: 'stage'; stage: Stage }
  /** The text on the device's own display, line by line. */
  | { type: 'display'; lines: string[] }
  /** PIN entry on the device keypad: a count of digits, never the digits. */
  | { type: 'pin'; entered: number; length: number }
  | { type: 'indicator'; indicator: Indicator };

// ---------------------------------------------------------------- app-wide events

export type LogLevel = 'info' | 'warn' | 'error';
export type LogSource = 'app' | 'device' | 'bank' | 'qa';

export interface LogEntry {
  seq: number;
  /** ISO-8601 time. */
  time: string;
  level: LogLevel;
  source: LogSource;
  /** Already free of secrets: the backend never logs key material or PIN data. */
  message: string;
}

export interface ConfirmationRequest {
  requestId: string;
  orderId: string;
  payerAccount: string;
  payeeName: string;
  payeeAccount: string;
  /** Integer minor units (cents / fen), as a decimal string. */
  amountMinor: string;
  currency: string;
  /** ISO-8601 time the bank pushed it. */
  receivedAt: string;
}

/** Sent over the channel given to `events_subscribe` (tag: `type`). */
export type AppEvent =
  /** The whole device list, after any change (attach, detach, state change). */
  | { type: 'devices'; devices: DeviceStatus[] }
  /** What a device's own display shows now (any time, not only in a session). */
  /** promptId: the prompt waiting for a key, or null when the keypad is idle (a key would be
   *  discarded). A key press names it, so a key never reaches a prompt the user has not seen. */
  | { type: 'deviceDisplay'; deviceId: string; lines: string[]; promptId: number | null }
  | { type: 'confirmationPushed'; request: ConfirmationRequest }
  | { type: 'log'; entry: LogEntry };

// ---------------------------------------------------------------- results

export interface PairingStart {
  pairingId: string;
  /** Six decimal digits, also shown on the device's display. */
  code: string;
}

export interface LoginSession {
  sessionId: string;
  customerId: string;
  customerName: string;
  deviceId: string;
  /** Accounts the customer may pay from. */
  accounts: string[];
}

export interface PaymentRequest {
  sessionId: string;
  fromAccount: string;
  payeeName: string;
  payeeAccount: string;
  /** Integer minor units as a decimal string ("12050" = 120.50). */
  amountMinor: string;
  currency: string;
  reference: string;
}

/** The bank's canonical payment message: this is what the device will show and sign. */
export interface PreparedPayment {
  paymentId: string;
  fromAccount: string;
  payeeName: string;
  payeeAccount: string;
  amountMinor: string;
  currency: string;
  reference: string;
}

/**
 * How a device operation ended, as the DEVICE decided:
 * approved / signed: the bank's response verified and the bank said yes (indicator safe);
 * declined / rejected: a legitimate answer of no (bank declined, or the user said no on the device);
 * refused: the device refused (tampered, bad bank response, unverified host) — indicator danger.
 */
export type Outcome = 'approved' | 'declined' | 'signed' | 'rejected' | 'refused';

/** Why a device refused or the bank declined, for the plain-words explanation. */
export type OutcomeReason =
  | 'none'
  | 'wrongPin'
  | 'insufficientFunds'
  | 'bankResponseInvalid'
  | 'tampered'
  | 'hostNotVerified'
  | 'userRejected';

export interface DeviceDecision {
  outcome: Outcome;
  indicator: Indicator;
  reason: OutcomeReason;
  /** The device's display at the end, verbatim. */
  deviceLines: string[];
}

export interface PaymentResult extends DeviceDecision {
  paymentId: string;
  /** Bank journal reference when approved. */
  bankReference: string | null;
}

export interface ConfirmationResult extends DeviceDecision {
  requestId: string;
}

export type StaffRole = 'clerk' | 'operator';

export interface StaffSession {
  staffId: string;
  displayName: string;
  role: StaffRole;
}

export type StaffAction = 'initialise' | 'enrol' | 'bind' | 'revoke' | 'rebind' | 'tamperReset';

export interface StaffActionResult {
  action: StaffAction;
  deviceId: string;
  /** Plain-words summary from the backend (e.g. "KCV 3 bytes matched"). No secrets. */
  detail: string;
  /** The device afterwards. */
  device: DeviceStatus;
}

export type Fault =
  | { kind: 'delay'; ms: number }
  | { kind: 'drop' }
  | { kind: 'corrupt' }
  | { kind: 'disconnect' }
  | { kind: 'busy' }
  | { kind: 'userTooSlow' };

export type FaultKind = Fault['kind'];

/** Keys of the device keypad. */
export type Key = '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | 'ok' | 'cancel' | 'clear';

export interface LogExport {
  fileName: string;
  /** The exported text, secrets already redacted by the backend. */
  content: string;
  redactions: number;
  /** Where the backend saved the file itself (desktop shell, after a save dialog); null: the UI offers a download. */
  savedTo: string | null;
}

export type Language = 'en' | 'zh-CN';
export type Theme = 'system' | 'light' | 'dark';

export interface Settings {
  /** Empty: the embedded sandbox bank. */
  bankUrl: string;
  /** PEM of a CA to trust for the bank, or null for the system roots. */
  bankCaPem: string | null;
  language: Language;
  theme: Theme;
}

export interface AppInfo {
  version: string;
  /** The app's own build hash, sent in the integrity report. */
  buildHash: string;
  backend: 'tauri' | 'mock';
  /** Running the in-process sandbox bank and mock device (no configuration). */
  embedded: boolean;
  /** Which build: `production` (bank from the bank profile, no QA) or `sandbox`. */
  flavour: 'production' | 'sandbox';
  /** The bank profile (production build); null in the sandbox. */
  bankProfile: BankProfileInfo | null;
}

/** The production build's bank profile as the app loaded it. */
export type BankProfileInfo =
  | { status: 'loaded'; path: string; displayName: string; url: string; userOverride: boolean }
  | { status: 'missing'; path: string }
  | { status: 'invalid'; path: string; error: string };
