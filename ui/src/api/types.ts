// The IPC contract between the screens and the desktop shell (src-tauri).
//
// The shapes the app core returns are GENERATED from the Rust types (./generated.ts, by ts-rs;
// src-tauri/tests/contract.rs fails when they drift). This file re-exports them and adds what
// only the screens use and what the shell itself owns (log lines, settings, app info).
// The command names are generated too (./commands.ts, from src-tauri/src/command_table.rs).
//
// The PC never sees the PIN: no type here carries PIN digits. PIN entry is reported only as a
// count of digits entered on the device's own keypad.

import type { CoreEvent, Fault, PaymentResult, TransportName } from './generated';

export type {
  BankCommandKind,
  BankReach,
  BankDevice,
  DeviceCommandRecord,
  LossReport,
  PinChangeResult,
  PinChangeVerdict,
  WipeResult,
  SerialAction,
  ConfirmationRequest,
  ConfirmationResult,
  CoreEvent,
  DeviceProgress,
  DeviceStatus,
  Fault,
  Firmware,
  Indicator,
  Lifecycle,
  LinkState,
  LockState,
  LoginSession,
  LogoutResult,
  Outcome,
  OutcomeReason,
  PairingStart,
  PassphraseNeed,
  PaymentHistory,
  PaymentOrigin,
  PaymentRecord,
  PaymentRequest,
  PaymentResult,
  HistoryOutcome,
  PreparedPayment,
  Stage,
  StaffAction,
  StaffActionResult,
  StaffRole,
  StaffSession,
  TamperState,
} from './generated';

export type Transport = TransportName;

export type LogLevel = 'info' | 'warn' | 'error';
export type LogSource = 'app' | 'device' | 'bank' | 'qa';

export interface LogEntry {
  seq: number;
  /** ISO-8601 time. */
  time: string;
  level: LogLevel;
  source: LogSource;
  /** Already free of secrets: the backend never logs key material or PIN data. English (the log file's words). */
  message: string;
  /** The typed flow event the line reports (`FlowEvent` as JSON, tag `type`), when it is one: the Logs screen words it. */
  event?: { type: string; [field: string]: unknown };
}

/** Sent over the channel given to `events_subscribe` (tag: `type`): the core's events and log lines. */
export type AppEvent = CoreEvent | { type: 'log'; entry: LogEntry };

/** How a device operation ended, as the device decided (the part every result shares). */
export type DeviceDecision = Pick<PaymentResult, 'outcome' | 'indicator' | 'reason' | 'deviceLines'>;

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
  /** Staff mode: the Staff (and in the sandbox QA) screens are in the menu; off for a customer. */
  staffMode: boolean;
  /** The guided first run (connect, pair, log in) was finished or skipped: not offered again. */
  firstRunDone: boolean;
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
