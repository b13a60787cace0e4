// Application state and the pure functions that change it. No I/O here: controller.ts calls the
// backend and feeds results through these, so every transition is unit-testable.
import type { AppError } from './api/errors';
import type {
  BankCommandKind,
  BankReach,
  LinkState,
  AppEvent,
  AppInfo,
  ConfirmationRequest,
  ConfirmationResult,
  DeviceProgress,
  DeviceStatus,
  Indicator,
  Language,
  LogEntry,
  LoginSession,
  LogoutResult,
  PassphraseNeed,
  PaymentRecord,
  PaymentResult,
  PreparedPayment,
  Settings,
  StaffActionResult,
  StaffSession,
  Stage,
  Theme,
} from './api/types';
import { amountUsesDecimalComma, isValidAccount, parseAmount } from './format';
import type { MessageKey } from './i18n';

/** What a long device operation has shown so far (fed by progress events). */
export interface LiveSession {
  stage: Stage | null;
  lines: string[];
  pin: { entered: number; length: number } | null;
  indicator: Indicator | null;
}

export const IDLE_LIVE: LiveSession = { stage: null, lines: [], pin: null, indicator: null };

export function applyProgress(s: LiveSession, ev: DeviceProgress): LiveSession {
  switch (ev.type) {
    case 'stage':
      return { ...s, stage: ev.stage };
    case 'display':
      return { ...s, lines: [...ev.lines] };
    case 'pin':
      return { ...s, pin: { entered: ev.entered, length: ev.length } };
    case 'indicator':
      return { ...s, indicator: ev.indicator };
  }
}

export type PairingFlow =
  | { step: 'start'; error: AppError | null; busy: boolean }
  | { step: 'compare'; pairingId: string; code: string; live: LiveSession }
  | { step: 'done'; device: DeviceStatus };

export type LoginFlow =
  | { step: 'form'; customerId: string; error: AppError | null; busy: boolean }
  | { step: 'device'; customerId: string; live: LiveSession }
  | { step: 'done' };

export interface PaymentForm {
  fromAccount: string;
  payeeName: string;
  payeeAccount: string;
  amount: string;
  currency: string;
  reference: string;
}

export type PaymentField = keyof PaymentForm;

export type PaymentFlow =
  | { step: 'form'; form: PaymentForm; errors: Partial<Record<PaymentField, MessageKey>>; error: AppError | null; busy: boolean }
  | { step: 'review'; form: PaymentForm; prepared: PreparedPayment; error: AppError | null; busy: boolean }
  | { step: 'device'; form: PaymentForm; prepared: PreparedPayment; live: LiveSession }
  | { step: 'result'; form: PaymentForm; prepared: PreparedPayment; live: LiveSession; result: PaymentResult | null; error: AppError | null };

export interface ConfirmFlow {
  requestId: string | null;
  live: LiveSession;
  result: ConfirmationResult | null;
  error: AppError | null;
}

export interface StaffFlow {
  deviceId: string | null;
  busy: StaffActionResult['action'] | 'signIn' | null;
  live: LiveSession;
  result: StaffActionResult | null;
  error: AppError | null;
}

/** The customer's payment history (pages joined, newest first) and the receipt open. */
export interface HistoryView {
  /** The login the pages belong to (another login reloads). */
  sessionId: string | null;
  payments: PaymentRecord[];
  nextBefore: string | null;
  loading: boolean;
  error: AppError | null;
  receiptId: string | null;
}

export const EMPTY_HISTORY: HistoryView = { sessionId: null, payments: [], nextBefore: null, loading: false, error: null, receiptId: null };

export interface State {
  lang: Language;
  theme: Theme;
  info: AppInfo | null;
  settings: Settings | null;
  devices: DeviceStatus[];
  activeDeviceId: string | null;
  /** Last display text per device (from deviceDisplay events). */
  displays: Record<string, string[]>;
  /** The prompt waiting for a key per device (deviceDisplay events); null/absent: idle. */
  prompts: Record<string, number | null>;
  /** Connected devices that were unplugged (deviceLink events): reconnecting, or back without
   *  the customer session. A device that is back with its session leaves the list. */
  links: Record<string, { link: LinkState; message: string }>;
  /** The last command the bank sent each device through this app (bankCommand events): what
   *  the bank did and whether the device obeyed, in the core's plain words. */
  bankCommands: Record<string, { command: BankCommandKind; applied: boolean; message: string }>;
  /** Whether the bank answers, as the core last saw it (bankReach events); `unknown` until told. */
  bankReach: { reach: BankReach; reason: string | null };
  session: LoginSession | null;
  /** What the last logout ended where (the bank's session, the device's session keys). */
  loggedOut: LogoutResult | null;
  staff: StaffSession | null;
  confirmations: ConfirmationRequest[];
  logs: LogEntry[];
  /** Errors of one-shot actions outside the flows (connect, QA buttons, settings), per screen. */
  notice: { screen: string; error: AppError | null; info: MessageKey | null; infoParams?: Record<string, string | number> } | null;
  pairing: PairingFlow;
  login: LoginFlow;
  payment: PaymentFlow;
  confirm: ConfirmFlow;
  staffFlow: StaffFlow;
  /** What the pairing key store needs from the user (no OS key store: a passphrase). */
  keyStore: PassphraseNeed;
  history: HistoryView;
  /** The guided first run is showing (decided once at start: nothing paired, not done before). */
  firstRun: boolean;
}

export const LOG_KEEP = 300;

export function emptyPaymentForm(fromAccount = ''): PaymentForm {
  return { fromAccount, payeeName: '', payeeAccount: '', amount: '', currency: 'CNY', reference: '' };
}

export function initialState(lang: Language = 'en'): State {
  return {
    lang,
    theme: 'system',
    info: null,
    settings: null,
    devices: [],
    activeDeviceId: null,
    displays: {},
    prompts: {},
    links: {},
    bankReach: { reach: 'unknown', reason: null },
    bankCommands: {},
    session: null,
    loggedOut: null,
    staff: null,
    confirmations: [],
    logs: [],
    notice: null,
    pairing: { step: 'start', error: null, busy: false },
    login: { step: 'form', customerId: '', error: null, busy: false },
    payment: { step: 'form', form: emptyPaymentForm(), errors: {}, error: null, busy: false },
    confirm: { requestId: null, live: IDLE_LIVE, result: null, error: null },
    staffFlow: { deviceId: null, busy: null, live: IDLE_LIVE, result: null, error: null },
    keyStore: 'none',
    history: EMPTY_HISTORY,
    firstRun: false,
  };
}

/** The device the flows use: the chosen one if still present, else the first connected one. */
export function activeDevice(s: Pick<State, 'devices' | 'activeDeviceId'>): DeviceStatus | null {
  const chosen = s.devices.find((d) => d.deviceId === s.activeDeviceId);
  if (chosen) return chosen;
  return s.devices.find((d) => d.connected) ?? null;
}

/** Apply an app-wide event from the backend. */
export function applyEvent(s: State, ev: AppEvent): State {
  switch (ev.type) {
    case 'devices': {
      const stillThere = ev.devices.some((d) => d.deviceId === s.activeDeviceId);
      return { ...s, devices: ev.devices, activeDeviceId: stillThere ? s.activeDeviceId : null };
    }
    case 'deviceDisplay':
      return {
        ...s,
        displays: { ...s.displays, [ev.deviceId]: [...ev.lines] },
        prompts: { ...s.prompts, [ev.deviceId]: ev.promptId ?? null },
      };
    case 'deviceLink': {
      const links = { ...s.links };
      if (ev.link === 'reconnected') delete links[ev.deviceId];
      else links[ev.deviceId] = { link: ev.link, message: ev.message };
      // The device restarted and forgot the customer session: the app's session is gone too.
      const lost = ev.link === 'sessionLost' && s.session?.deviceId === ev.deviceId;
      return { ...s, links, session: lost ? null : s.session, history: lost ? EMPTY_HISTORY : s.history };
    }
    case 'bankCommand': {
      const bankCommands = { ...s.bankCommands, [ev.deviceId]: { command: ev.command, applied: ev.applied, message: ev.message } };
      // The bank ended the session (a wipe or lock): the app's session on that device is gone.
      if (!ev.sessionEnded || !s.session || s.session.deviceId !== ev.deviceId) return { ...s, bankCommands };
      const login: LoginFlow = { step: 'form', customerId: s.session.customerId, error: null, busy: false };
      return { ...s, bankCommands, session: null, login, history: EMPTY_HISTORY };
    }
    case 'bankReach':
      return { ...s, bankReach: { reach: ev.reach, reason: ev.reason } };
    case 'confirmationPushed':
      if (s.confirmations.some((c) => c.requestId === ev.request.requestId)) return s;
      return { ...s, confirmations: [...s.confirmations, ev.request] };
    case 'log': {
      const logs = s.logs.length >= LOG_KEEP ? s.logs.slice(s.logs.length - LOG_KEEP + 1) : s.logs.slice();
      logs.push(ev.entry);
      return { ...s, logs };
    }
  }
}

/** Replace one device in the list with a fresher status (after connect, staff actions...). */
export function upsertDevice(devices: DeviceStatus[], d: DeviceStatus): DeviceStatus[] {
  const i = devices.findIndex((x) => x.deviceId === d.deviceId);
  if (i < 0) return [...devices, d];
  const next = devices.slice();
  next[i] = d;
  return next;
}

export type PaymentCheck =
  | { ok: true; amountMinor: string }
  | { ok: false; errors: Partial<Record<PaymentField, MessageKey>> };

/** Check the payment form before asking the bank (the bank checks again). */
export function validatePaymentForm(f: PaymentForm): PaymentCheck {
  const errors: Partial<Record<PaymentField, MessageKey>> = {};
  if (!f.fromAccount) errors.fromAccount = 'payment.err.fromAccount';
  if (!f.payeeName.trim()) errors.payeeName = 'payment.err.payeeName';
  if (!isValidAccount(f.payeeAccount)) errors.payeeAccount = 'payment.err.payeeAccount';
  const amountMinor = parseAmount(f.amount, f.currency);
  if (amountMinor === null) errors.amount = amountUsesDecimalComma(f.amount) ? 'payment.err.amountComma' : 'payment.err.amount';
  if (f.reference.length > 35) errors.reference = 'payment.err.reference';
  if (Object.keys(errors).length > 0 || amountMinor === null) return { ok: false, errors };
  return { ok: true, amountMinor };
}

export type ResultTone = 'safe' | 'warn' | 'danger' | 'neutral';

/**
 * How the result panel looks: the outcome the device reported drives it, not the device's
 * light (a safe device that declined a wrong PIN is not a green result). Approved or signed is
 * green, declined amber, blocked or refused (or a device in danger) red, the customer's own no
 * neutral. The light is shown beside it as the device's integrity, separately.
 */
export function resultTone(r: { indicator: Indicator; outcome: string; reason?: string }): ResultTone {
  if (r.indicator === 'danger' || r.outcome === 'refused' || r.reason === 'pinBlocked') return 'danger';
  if (r.outcome === 'approved' || r.outcome === 'signed') return 'safe';
  if (r.reason === 'userRejected') return 'neutral';
  if (r.outcome === 'declined') return 'warn';
  return 'neutral';
}

/** Whether the guided first run starts: a customer (not staff mode) who has not finished or
 *  skipped it and has no paired PIN pad yet. */
export function wantsFirstRun(settings: Settings | null, devices: DeviceStatus[]): boolean {
  return settings !== null && !settings.firstRunDone && !settings.staffMode && !devices.some((d) => d.paired);
}

export type HistoryTone = 'safe' | 'warn' | 'danger' | 'neutral';

/** A history row's colour: as a payment's result (approved green, declined amber, a blocked
 *  PIN red, open or expired neutral). */
export function historyTone(p: Pick<PaymentRecord, 'outcome' | 'reason'>): HistoryTone {
  if (p.outcome === 'approved') return 'safe';
  if (p.outcome === 'declined') return p.reason === 'pinBlocked' ? 'danger' : 'warn';
  return 'neutral';
}
