// MockBackend: a scripted, in-memory PIN pad (or several) and a sandbox bank, behind the same
// Backend interface as the desktop shell. Used by the unit tests, the browser end-to-end tests and
// `npm run dev`. It plays the device's part honestly: PIN digits pressed on a mock device's keypad
// stay inside that MockDevice object (as they would stay inside the real device); everything the
// screens receive — results, progress events, app events, logs — carries at most a digit count.
import type { Backend, EventSink, ProgressSink, Unsubscribe } from './backend';
import { appError, type AppError } from './errors';
import { isValidAccount } from '../format';
import { mockRecord, pageOf, roleGrants } from './mockHistory';
import type {
  AppEvent,
  AppInfo,
  BankReach,
  ConfirmationRequest,
  ConfirmationResult,
  DeviceStatus,
  Fault,
  Indicator,
  Key,
  Language,
  LogEntry,
  LogExport,
  BankDevice,
  DeviceCommandRecord,
  LossReport,
  PinChangeResult,
  SerialAction,
  WipeResult,
  LoginSession,
  LogoutResult,
  LogLevel,
  LogSource,
  PairingStart,
  PassphraseNeed,
  PaymentHistory,
  PaymentRecord,
  PaymentRequest,
  PaymentResult,
  PreparedPayment,
  Settings,
  StaffActionResult,
  StaffRole,
  StaffSession,
  Stage,
} from './types';

export interface MockOptions {
  /** Pause between protocol steps, so progress is visible (0 in unit tests). */
  stepMs?: number;
  /** How long the device waits for the user at its keypad. */
  userTimeoutMs?: number;
  /** Start with the embedded default (one bound mock device, two customers, one pushed request). */
  seed?: boolean;
  /** The language the settings start with (the desktop shell takes the system's). */
  language?: Language;
  /** Staff mode on (the default here: the tests drive staff and QA screens); off is a customer's menu. */
  staffMode?: boolean;
  /** The first run done (the default here); false shows the guided first run while nothing is paired. */
  firstRunDone?: boolean;
}

export const MOCK_PIN_LENGTH = 6;

/** The sandbox's well-known accounts (documented in ui/README.md). */
export const SANDBOX = {
  customers: [
    { customerId: 'C-1001', name: 'Li Wei', accounts: ['6222 0210 0000 1234'], pin: '123456' },
    { customerId: 'C-1002', name: 'Wang Fang', accounts: ['6222 0210 0000 5678'], pin: null as string | null },
  ],
  staff: [
    { staffId: 'op-01', password: 'operator-pass', displayName: 'Zhang Min', role: 'operator' as StaffRole },
    { staffId: 'clerk-01', password: 'clerk-pass', displayName: 'Chen Jie', role: 'clerk' as StaffRole },
  ],
  balanceMinor: 1_000_000n,
};

/** Tokens of 16+ letters/digits with at least one digit: key blocks, hex keys, MACs. */
export const REDACT = /\b(?=[0-9A-Za-z]*[0-9])[0-9A-Za-z]{16,}\b/g;

/** The loss-report code the seeded customer C-1001 got at enrolment (the MockBackend's only one). */
export const MOCK_LOSS_CODE = 'LOSS-1001-2026';

/** Wrong PINs the sandbox bank allows before it blocks the PIN (BankConfig::max_wrong_pins). */
const MAX_WRONG_PINS = 3;
const FIRMWARE_HASH = '3f9a0c5de1b27a4486f0e2c917b35d60a8e4f12b7c9d03e56a1b2c3d4e5f6071';

interface Waiter {
  kind: 'pin' | 'confirm';
  onKey: (key: Key) => void;
  fail: (e: AppError) => void;
  tag: string;
}

interface Faults {
  delayMs: number;
  drop: boolean;
  corrupt: boolean;
  disconnect: boolean;
  busy: boolean;
  userTooSlow: boolean;
}

function noFaults(): Faults {
  return { delayMs: 0, drop: false, corrupt: false, disconnect: false, busy: false, userTooSlow: false };
}

class MockDevice {
  status: DeviceStatus;
  display: string[] = ['PinBridge', 'Ready'];
  faults: Faults = noFaults();
  waiter: Waiter | null = null;
  /** The id of the last prompt shown; the prompt is up while `waiter` is set. */
  promptSeq = 0;
  /** Digits typed on the device keypad for the current entry. Never leaves this object. */
  private pinDigits = '';

  constructor(status: DeviceStatus) {
    this.status = status;
  }

  get id(): string {
    return this.status.deviceId;
  }

  clearPin(): void {
    this.pinDigits = '';
  }
  pushDigit(d: string): number {
    if (this.pinDigits.length < MOCK_PIN_LENGTH) this.pinDigits += d;
    return this.pinDigits.length;
  }
  get pinCount(): number {
    return this.pinDigits.length;
  }
  /** The device turns the entry into a PIN block; here: a sealed token only the bank can check. */
  sealPin(): SealedPin {
    const sealed = new SealedPin(this.pinDigits);
    this.pinDigits = '';
    return sealed;
  }
}

/** Stand-in for an encrypted PIN block: opaque to the app, checkable by the bank. */
class SealedPin {
  readonly #pin: string;
  constructor(pin: string) {
    this.#pin = pin;
  }
  matches(pvv: string | null): boolean {
    return pvv !== null && this.#pin === pvv;
  }
  sameAs(other: SealedPin): boolean {
    return this.#pin === other.#pin;
  }
  /** For enrolment: the bank keeps a verification value; the sandbox keeps it as is. */
  toVerificationValue(): string {
    return this.#pin;
  }
  toJSON(): string {
    return '[sealed]';
  }
}

interface Customer {
  customerId: string;
  name: string;
  accounts: string[];
  pvv: string | null;
  deviceId: string | null;
}

interface Payment extends PreparedPayment {
  sessionId: string;
  state: 'prepared' | 'approving' | 'done';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function clone<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

function groupAccount(acct: string): string {
  return acct.replace(/\s+/g, '').replace(/(.{4})(?=.)/g, '$1 ');
}

function lastFour(acct: string): string {
  return acct.replace(/\s+/g, '').slice(-4);
}

function money(minor: string, currency: string): string {
  const n = BigInt(minor);
  const whole = n / 100n;
  const frac = (n % 100n).toString().padStart(2, '0');
  return `${currency} ${whole.toString()}.${frac}`;
}

export class MockBackend implements Backend {
  private readonly stepMs: number;
  private readonly userTimeoutMs: number;
  private sinks = new Set<EventSink>();
  private devices = new Map<string, MockDevice>();
  private customers = new Map<string, Customer>();
  private pairings = new Map<string, { deviceId: string; code: string }>();
  private sessions = new Map<string, LoginSession>();
  /** Per serial: the bank's signed commands and the PIN pad's answers, newest first. */
  private commandLog = new Map<string, DeviceCommandRecord[]>();
  private payments = new Map<string, Payment>();
  /** Wrong PINs in a row per customer, as the bank counts them (reset by a right one): payments
   *  and PIN changes share the count, as the bank's do (3 block the PIN). */
  private wrongPins = new Map<string, number>();
  private confirmations: ConfirmationRequest[] = [];
  private staff: StaffSession | null = null;
  private log: LogEntry[] = [];
  private seq = 0;
  private idSeq = 0;
  private simSerial = 0;
  private settings: Settings = { bankUrl: '', bankCaPem: null, language: 'en', theme: 'system', staffMode: true, firstRunDone: true };
  /** Decided payments, newest first, with their customer. */
  private history: { customerId: string; record: PaymentRecord }[] = [];

  constructor(opts: MockOptions = {}) {
    this.stepMs = opts.stepMs ?? 250;
    this.userTimeoutMs = opts.userTimeoutMs ?? 120_000;
    this.settings.language = opts.language ?? 'en';
    this.settings.staffMode = opts.staffMode ?? true;
    this.settings.firstRunDone = opts.firstRunDone ?? true;
    for (const c of SANDBOX.customers) {
      this.customers.set(c.customerId, { ...c, accounts: [...c.accounts], pvv: c.pin, deviceId: null });
    }
    if (opts.seed ?? true) this.seedEmbeddedDefault();
  }

  private seedEmbeddedDefault(): void {
    const dev = this.addMock('PinPad Sim 1');
    dev.status.lifecycle = 'bound';
    dev.status.customerId = 'C-1001';
    this.customers.get('C-1001')!.deviceId = dev.id;
    this.confirmations.push({
      requestId: this.nextId('req'),
      orderId: 'ORD-7731',
      payerAccount: '6222 0210 0000 1234',
      payeeName: 'Tmall Store',
      payeeAccount: '6222 0800 4455 6677',
      amountMinor: '8800',
      currency: 'CNY',
      receivedAt: new Date().toISOString(),
    });
    this.addLog('info', 'bank', 'Embedded sandbox bank started');
    this.addLog('info', 'device', `Mock device ${dev.status.serial} started (sim)`);
  }

  // ------------------------------------------------------------------ plumbing

  private nextId(prefix: string): string {
    this.idSeq += 1;
    return `${prefix}-${this.idSeq}`;
  }

  private emit(ev: AppEvent): void {
    for (const s of this.sinks) s(clone(ev));
  }

  private addLog(level: LogLevel, source: LogSource, message: string): void {
    this.seq += 1;
    const entry: LogEntry = { seq: this.seq, time: new Date().toISOString(), level, source, message };
    this.log.push(entry);
    if (this.log.length > 1000) this.log.shift();
    this.emit({ type: 'log', entry });
  }

  private emitDevices(): void {
    this.emit({ type: 'devices', devices: this.snapshot() });
  }

  private snapshot(): DeviceStatus[] {
    return [...this.devices.values()].map((d) => clone(d.status));
  }

  private addMock(name: string): MockDevice {
    this.simSerial += 1;
    const n = this.simSerial;
    const dev = new MockDevice({
      deviceId: `sim-${n}`,
      name,
      transport: 'sim',
      serial: `PB-SIM-${String(n).padStart(4, '0')}`,
      connected: false,
      lifecycle: 'manufactured',
      tamper: 'clear',
      lock: 'unlocked',
      indicator: 'off',
      paired: false,
      customerId: null,
      firmware: { version: '1.0.3', hash: FIRMWARE_HASH },
      genuine: 'unchecked',
      genuineFailures: [],
      mock: true,
    });
    this.devices.set(dev.id, dev);
    return dev;
  }

  private device(deviceId: string): MockDevice {
    const d = this.devices.get(deviceId);
    if (!d) throw appError('deviceNotFound', `no device ${deviceId}`);
    return d;
  }

  private setDisplay(dev: MockDevice, lines: string[], onProgress?: ProgressSink): void {
    dev.display = lines;
    onProgress?.({ type: 'display', lines: [...lines] });
    this.emitDisplay(dev);
  }

  private emitDisplay(dev: MockDevice): void {
    const promptId = dev.waiter ? dev.promptSeq : null;
    this.emit({ type: 'deviceDisplay', deviceId: dev.id, lines: [...dev.display], promptId });
  }

  private setIndicator(dev: MockDevice, indicator: Indicator, onProgress?: ProgressSink): void {
    dev.status.indicator = indicator;
    onProgress?.({ type: 'indicator', indicator });
    this.emitDevices();
  }

  private stage(stage: Stage, onProgress: ProgressSink): void {
    onProgress({ type: 'stage', stage });
  }

  /** One request/response with the device, with the QA faults applied. */
  private async exchange(dev: MockDevice, what: string): Promise<void> {
    if (!dev.status.connected) throw appError('deviceDisconnected', `${dev.status.serial} is not connected`);
    await sleep(this.stepMs + dev.faults.delayMs);
    if (dev.faults.disconnect) {
      dev.faults.disconnect = false;
      dev.status.connected = false;
      this.addLog('error', 'device', `${dev.status.serial}: link lost during ${what}`);
      this.emitDevices();
      throw appError('deviceDisconnected', `link lost during ${what}`);
    }
    if (dev.faults.busy) {
      dev.faults.busy = false;
      this.addLog('warn', 'device', `${dev.status.serial}: BUSY (another channel is mid-transaction)`);
      throw appError('deviceBusy', `device answered BUSY to ${what}`);
    }
    if (dev.faults.drop) {
      dev.faults.drop = false;
      this.addLog('warn', 'device', `${dev.status.serial}: packet lost during ${what}; retransmitted`);
      await sleep(this.stepMs);
    }
  }

  private requireUsable(dev: MockDevice, opts: { paired?: boolean; bound?: boolean } = {}): void {
    const s = dev.status;
    if (!s.connected) throw appError('deviceDisconnected', `${s.serial} is not connected`);
    if (s.tamper === 'tampered') throw appError('tampered', `${s.serial} reports TAMPERED`);
    if (s.lifecycle === 'revoked') throw appError('revoked', `${s.serial} was revoked by the bank`);
    if (s.lock === 'locked') throw appError('locked', `${s.serial} is locked`);
    if (opts.bound && s.lifecycle !== 'bound') throw appError('notBound', `${s.serial} is ${s.lifecycle}`);
    if (opts.paired && !s.paired) throw appError('notPaired', `${s.serial} is not paired with this app`);
  }

  /**
   * Wait for the user at the device keypad. For 'pin', resolves once OK is pressed with a full PIN
   * (the digits stay in the device). For 'confirm', resolves true on OK and false on Cancel.
   */
  private waitForUser(dev: MockDevice, kind: 'pin', tag: string, onProgress: ProgressSink): Promise<true>;
  private waitForUser(dev: MockDevice, kind: 'confirm', tag: string, onProgress: ProgressSink): Promise<boolean>;
  private waitForUser(dev: MockDevice, kind: 'pin' | 'confirm', tag: string, onProgress: ProgressSink): Promise<boolean> {
    this.stage('waitingForUser', onProgress);
    dev.clearPin();
    if (kind === 'pin') onProgress({ type: 'pin', entered: 0, length: MOCK_PIN_LENGTH });
    return new Promise<boolean>((resolve, reject) => {
      const timeoutMs = dev.faults.userTooSlow ? Math.max(50, this.stepMs * 2) : this.userTimeoutMs;
      dev.faults.userTooSlow = false;
      const done = (): void => {
        clearTimeout(timer);
        dev.waiter = null;
        this.emitDisplay(dev);
      };
      const timer = setTimeout(() => {
        done();
        dev.clearPin();
        this.setDisplay(dev, ['Timed out', 'No key pressed'], onProgress);
        this.addLog('warn', 'device', `${dev.status.serial}: user did not answer in time`);
        reject(appError('userTooSlow', 'the device timed out waiting for a key'));
      }, timeoutMs);
      dev.waiter = {
        kind,
        tag,
        fail: (e) => {
          done();
          dev.clearPin();
          reject(e);
        },
        onKey: (key) => {
          if (key === 'cancel') {
            done();
            dev.clearPin();
            if (kind === 'confirm') return resolve(false);
            this.setDisplay(dev, ['Cancelled'], onProgress);
            reject(appError('userCancelled', 'cancelled on the device'));
            return;
          }
          if (kind === 'confirm') {
            if (key === 'ok') {
              done();
              resolve(true);
            }
            return;
          }
          if (key === 'clear') {
            dev.clearPin();
            onProgress({ type: 'pin', entered: 0, length: MOCK_PIN_LENGTH });
          } else if (key === 'ok') {
            if (dev.pinCount === MOCK_PIN_LENGTH) {
              done();
              resolve(true);
            } else {
              this.setDisplay(dev, [...dev.display.filter((l) => !l.startsWith('PIN must')), `PIN must be ${MOCK_PIN_LENGTH} digits`], onProgress);
            }
          } else {
            const n = dev.pushDigit(key);
            onProgress({ type: 'pin', entered: n, length: MOCK_PIN_LENGTH });
          }
        },
      };
      // The prompt is up: the keypad takes keys for it from now on.
      dev.promptSeq += 1;
      this.emitDisplay(dev);
    });
  }

  // ------------------------------------------------------------------ Backend

  async appInfo(): Promise<AppInfo> {
    // The mock stands in for the sandbox build (it has QA and the embedded bank).
    return { version: '0.1.0', buildHash: 'dev-mock', backend: 'mock', embedded: this.settings.bankUrl === '', flavour: 'sandbox', bankProfile: null };
  }

  /** Whether the mock bank answers (the core's bankReach event); a test sets it to unreachable. */
  private bankReach: { reach: BankReach; reason: string | null } = { reach: 'reachable', reason: null };

  setBankReach(reach: BankReach, reason: string | null = null): void {
    this.bankReach = { reach, reason };
    this.emit({ type: 'bankReach', ...this.bankReach });
  }

  async subscribe(sink: EventSink): Promise<Unsubscribe> {
    this.sinks.add(sink);
    // As the shell does: the current state first.
    sink(clone<AppEvent>({ type: 'bankReach', ...this.bankReach }));
    return () => {
      this.sinks.delete(sink);
    };
  }

  async listDevices(): Promise<DeviceStatus[]> {
    return this.snapshot();
  }

  /** The pairing key store: 'none' (an OS key store), or set by a test to a computer without one. */
  keyStore: PassphraseNeed = 'none';
  /** The passphrase the mock's store is sealed under once created. */
  private keyStorePassphrase: string | null = null;

  async keyStoreStatus(): Promise<PassphraseNeed> {
    return this.keyStore;
  }

  async keyStoreUnlock(passphrase: string): Promise<PassphraseNeed> {
    if (this.keyStore === 'create') {
      if ([...passphrase].length < 8) throw appError('invalidInput', 'key store passphrase: shorter than 8 characters');
      this.keyStorePassphrase = passphrase;
    } else if (this.keyStore === 'unlock' && passphrase !== this.keyStorePassphrase) {
      throw appError('invalidInput', 'the pairing key store does not open with this passphrase');
    }
    this.keyStore = 'none';
    return this.keyStore;
  }

  /** A test's computer without an OS key store whose store is sealed under `passphrase`. */
  lockKeyStore(passphrase: string): void {
    this.keyStore = 'unlock';
    this.keyStorePassphrase = passphrase;
  }

  async connect(deviceId: string): Promise<DeviceStatus> {
    const dev = this.device(deviceId);
    await sleep(this.stepMs / 2);
    dev.status.connected = true;
    // The scripted PIN pad's certificate is the mock CA's, which the mock trusts.
    dev.status.genuine = 'genuine';
    this.addLog('info', 'device', `${dev.status.serial} connected over ${dev.status.transport}; firmware ${dev.status.firmware.version}`);
    this.emitDevices();
    this.emitDisplay(dev);
    return clone(dev.status);
  }

  async disconnect(deviceId: string): Promise<void> {
    const dev = this.device(deviceId);
    dev.waiter?.fail(appError('deviceDisconnected', 'disconnected by the app'));
    dev.status.connected = false;
    dev.status.genuine = 'unchecked';
    this.addLog('info', 'device', `${dev.status.serial} disconnected`);
    this.emitDevices();
  }

  async deviceStatus(deviceId: string): Promise<DeviceStatus> {
    return clone(this.device(deviceId).status);
  }

  // pairing ------------------------------------------------------------

  async pairingBegin(deviceId: string): Promise<PairingStart> {
    const dev = this.device(deviceId);
    this.requireUsable(dev);
    await this.exchange(dev, 'pairing');
    const code = String(100000 + Math.floor(Math.random() * 900000));
    const pairingId = this.nextId('pair');
    this.pairings.set(pairingId, { deviceId, code });
    this.setDisplay(dev, ['Pairing code', `${code.slice(0, 3)} ${code.slice(3)}`, 'Same as on the PC?', 'OK = yes  Cancel = no']);
    this.addLog('info', 'app', `Pairing started with ${dev.status.serial} (ECDH)`);
    return { pairingId, code };
  }

  async pairingConfirm(pairingId: string, onProgress: ProgressSink): Promise<DeviceStatus> {
    const p = this.pairings.get(pairingId);
    if (!p) throw appError('notFound', `no pairing ${pairingId}`);
    const dev = this.device(p.deviceId);
    onProgress({ type: 'display', lines: [...dev.display] });
    const yes = await this.waitForUser(dev, 'confirm', pairingId, onProgress);
    this.pairings.delete(pairingId);
    if (!yes) {
      this.setDisplay(dev, ['Pairing cancelled'], onProgress);
      this.addLog('warn', 'device', `${dev.status.serial}: pairing refused on the device`);
      throw appError('userCancelled', 'pairing was refused on the device');
    }
    await this.exchange(dev, 'pairing key confirmation');
    dev.status.paired = true;
    this.setDisplay(dev, ['Paired', 'with this computer'], onProgress);
    this.addLog('info', 'app', `Paired with ${dev.status.serial}; host pairing key stored in the OS keystore`);
    this.stage('done', onProgress);
    this.emitDevices();
    return clone(dev.status);
  }

  async pairingCancel(pairingId: string): Promise<void> {
    const p = this.pairings.get(pairingId);
    if (!p) return;
    this.pairings.delete(pairingId);
    const dev = this.devices.get(p.deviceId);
    if (dev) {
      dev.waiter?.fail(appError('userCancelled', 'pairing cancelled in the app'));
      this.setDisplay(dev, ['Pairing cancelled']);
    }
  }

  // login ---------------------------------------------------------------

  async login(deviceId: string, customerId: string, onProgress: ProgressSink): Promise<LoginSession> {
    const dev = this.device(deviceId);
    this.requireUsable(dev, { paired: true, bound: true });
    const customer = this.customers.get(customerId.trim().toUpperCase());
    if (!customer) throw appError('bankRejected', `the bank has no customer ${customerId}`);
    if (dev.status.customerId !== customer.customerId) {
      throw appError('bankRejected', `device ${dev.status.serial} is not bound to ${customer.customerId}`);
    }
    this.stage('contactingBank', onProgress);
    this.setDisplay(dev, ['Logging in', 'Sandbox Bank'], onProgress);
    await this.exchange(dev, 'device information');
    this.addLog('info', 'bank', `Login: device ${dev.status.serial} registered, bound, firmware ${dev.status.firmware.version} allowed`);
    this.stage('sendingToDevice', onProgress);
    await this.exchange(dev, 'session key update');
    if (dev.faults.corrupt) {
      dev.faults.corrupt = false;
      this.setIndicator(dev, 'danger', onProgress);
      this.setDisplay(dev, ['Key update refused', 'Old keys kept'], onProgress);
      this.addLog('error', 'device', `${dev.status.serial}: session key block failed its check; treated as intrusion`);
      throw appError('keyCheckFailed', 'the device refused the new session keys (check failed)');
    }
    this.addLog('info', 'device', `Session keys installed (key blocks D0144P0AE00E0000B1C2D3E4F5A6B7C8D9E0F1A2)`);
    this.stage('verifyingResponse', onProgress);
    await this.exchange(dev, 'authentication');
    const session: LoginSession = {
      sessionId: this.nextId('sess'),
      customerId: customer.customerId,
      customerName: customer.name,
      deviceId,
      accounts: [...customer.accounts],
    };
    this.sessions.set(session.sessionId, session);
    this.setIndicator(dev, 'safe', onProgress);
    this.setDisplay(dev, ['Logged in', customer.name], onProgress);
    this.addLog('info', 'bank', `Session opened for ${customer.customerId}`);
    this.stage('done', onProgress);
    return clone(session);
  }

  // a PIN pad that is not here, by serial ---------------------------------------------------

  private bySerial(serial: string): MockDevice {
    const dev = [...this.devices.values()].find((d) => d.status.serial === serial.trim());
    if (!dev) throw appError('notFound', `no device ${serial.trim()} at the bank`);
    return dev;
  }

  private bankView(dev: MockDevice): BankDevice {
    const commands = [...(this.commandLog.get(dev.status.serial) ?? [])];
    return { serial: dev.status.serial, state: dev.status.lifecycle, locked: dev.status.lock === 'locked', customerId: dev.status.customerId, commands };
  }

  /** As the bank records a signed command, with the answer an app connected to the PIN pad reports. */
  private logCommand(dev: MockDevice, command: string, issuedBy: string): void {
    const log = this.commandLog.get(dev.status.serial) ?? [];
    const on = dev.status.connected;
    log.unshift({
      sequence: log.length + 1,
      command,
      issuedBy,
      issuedAt: Date.now(),
      outcome: on ? 'applied' : null,
      detail: on ? `${dev.status.lifecycle}, ${dev.status.lock}` : null,
    });
    this.commandLog.set(dev.status.serial, log);
  }

  /** As the core: a lock pushed to a customer logged in with the device ends the login. */
  private pushLock(dev: MockDevice): void {
    for (const [id, session] of this.sessions) {
      if (session.deviceId !== dev.id) continue;
      this.sessions.delete(id);
      this.emit({
        type: 'bankCommand',
        deviceId: dev.id,
        serial: dev.status.serial,
        command: 'lock',
        applied: dev.status.connected,
        lifecycle: dev.status.connected ? dev.status.lifecycle : null,
        lock: dev.status.connected ? 'locked' : null,
        sessionEnded: true,
        message: `Your bank locked this PIN pad (${dev.status.serial}); it cannot pay until the bank unlocks it. You are logged out.`,
      });
    }
  }

  async reportLost(serial: string, customerId: string, code: string): Promise<LossReport> {
    await sleep(this.stepMs);
    const dev = [...this.devices.values()].find((d) => d.status.serial === serial.trim());
    // One refusal for every wrong combination, as the bank answers.
    if (!dev || dev.status.customerId !== customerId.trim() || code.trim() !== MOCK_LOSS_CODE) {
      throw appError('bankRejected', 'the serial, customer and loss-report code do not match');
    }
    dev.status.lock = 'locked';
    this.revokeDevice(dev);
    this.emitDevices();
    return {
      serial: dev.status.serial,
      message: `${dev.status.serial} is locked and revoked at the bank: it can no longer log in, and it wipes itself when it next reaches the bank or a PinBridge app.`,
    };
  }

  async staffDeviceLookup(serial: string): Promise<BankDevice> {
    this.requireStaff();
    return this.bankView(this.bySerial(serial));
  }

  async staffBySerial(serial: string, action: SerialAction): Promise<BankDevice> {
    this.requireStaff();
    const dev = this.bySerial(serial);
    await sleep(this.stepMs);
    switch (action) {
      case 'revoke':
        this.revokeDevice(dev);
        break;
      case 'lock':
        dev.status.lock = 'locked';
        this.pushLock(dev);
        break;
      case 'unlock':
        dev.status.lock = 'unlocked';
        break;
      case 'unpair':
        dev.status.paired = false;
        break;
    }
    this.addLog('warn', 'bank', `${dev.status.serial}: ${action} by serial`);
    this.logCommand(dev, { revoke: 'wipe', lock: 'lock', unlock: 'unlock', unpair: 'forget_hosts' }[action], this.staff!.staffId);
    this.emitDevices();
    return this.bankView(dev);
  }

  async staffRebindBySerial(fromSerial: string, toDeviceId: string, onProgress: ProgressSink): Promise<StaffActionResult> {
    const staff = this.requireStaff();
    const from = this.bySerial(fromSerial);
    const to = this.device(toDeviceId);
    if (from === to) throw appError('invalidInput', 'the PIN pad being replaced is the one connected here: connect the new one');
    const customerId = from.status.customerId;
    if (!customerId || from.status.lifecycle !== 'bound') {
      throw appError('notBound', `the bank has no customer bound to ${from.status.serial}: enrol the customer on the new PIN pad instead`);
    }
    this.requireUsable(to);
    if (to.status.lifecycle !== 'initialised') throw appError('notInitialised', `${to.status.serial} must be initialised and not bound`);
    this.revokeDevice(from);
    this.logCommand(from, 'wipe', staff.staffId);
    const customer = this.customers.get(customerId)!;
    this.stage('sendingToDevice', onProgress);
    await this.exchange(to, 'PIN enrolment');
    this.setDisplay(to, ['Choose a PIN', `${MOCK_PIN_LENGTH} digits, then OK`], onProgress);
    await this.waitForUser(to, 'pin', `rebind-${toDeviceId}`, onProgress);
    const first = to.sealPin();
    this.setDisplay(to, ['Repeat the PIN', 'then OK'], onProgress);
    await this.waitForUser(to, 'pin', `rebind-${toDeviceId}`, onProgress);
    if (!first.sameAs(to.sealPin())) {
      this.setDisplay(to, ['PINs differ', 'Try again'], onProgress);
      throw appError('invalidInput', 'the two PIN entries on the device were different');
    }
    this.stage('sendingToBank', onProgress);
    await this.exchange(to, 'PIN block');
    customer.pvv = first.toVerificationValue();
    to.status.lifecycle = 'bound';
    to.status.customerId = customerId;
    customer.deviceId = to.id;
    this.setDisplay(to, ['PIN set', `Bound to ${customerId}`], onProgress);
    this.addLog('info', 'bank', `${customerId} moved from ${from.status.serial} to ${to.status.serial}`);
    this.stage('done', onProgress);
    return this.result('rebind', to, `${customerId} moved to ${to.status.serial}; ${from.status.serial} revoked`);
  }

  // the customer's own PIN pad ---------------------------------------------------------------

  async pinChange(sessionId: string, onProgress: ProgressSink): Promise<PinChangeResult> {
    const session = this.sessions.get(sessionId);
    if (!session) throw appError('notLoggedIn', 'the session has ended; log in again');
    const dev = this.device(session.deviceId);
    this.requireUsable(dev, { paired: true, bound: true });
    const customer = this.customers.get(session.customerId)!;
    this.stage('contactingBank', onProgress);
    await this.exchange(dev, 'PIN change');
    const tag = `pin-${sessionId}`;
    this.setDisplay(dev, ['Change PIN', 'Enter your current PIN'], onProgress);
    await this.waitForUser(dev, 'pin', tag, onProgress);
    const current = dev.sealPin();
    this.setDisplay(dev, ['Change PIN', `Choose a new PIN (${MOCK_PIN_LENGTH} digits)`], onProgress);
    await this.waitForUser(dev, 'pin', tag, onProgress);
    const first = dev.sealPin();
    this.setDisplay(dev, ['Change PIN', 'Enter the new PIN again'], onProgress);
    await this.waitForUser(dev, 'pin', tag, onProgress);
    if (!first.sameAs(dev.sealPin())) {
      this.setDisplay(dev, ['PINs differ: PIN not changed'], onProgress);
      throw appError('invalidInput', 'the two new PIN entries on the PIN pad were different');
    }
    this.stage('sendingToBank', onProgress);
    await this.exchange(dev, 'PIN blocks and MAC');
    this.stage('verifyingResponse', onProgress);
    this.setIndicator(dev, 'safe', onProgress);
    const wrong = this.wrongPins.get(customer.customerId) ?? 0;
    let result: PinChangeResult;
    if (wrong >= 3 || !current.matches(customer.pvv)) {
      const now = wrong + 1;
      this.wrongPins.set(customer.customerId, now);
      const left = Math.max(0, 3 - now);
      result =
        left === 0
          ? { verdict: 'blocked', triesLeft: null, deviceText: 'PIN blocked: contact your bank', message: 'The current PIN was wrong too many times: the PIN is blocked. Contact your bank.' }
          : {
              verdict: 'wrongPin',
              triesLeft: left,
              deviceText: `Wrong PIN: not changed, ${left === 1 ? '1 try' : `${left} tries`} left`,
              message: `The current PIN was wrong: the PIN is not changed. ${left === 1 ? '1 try' : `${left} tries`} left before the PIN is blocked.`,
            };
    } else {
      this.wrongPins.delete(customer.customerId);
      customer.pvv = first.toVerificationValue();
      result = { verdict: 'changed', triesLeft: null, deviceText: 'PIN changed', message: 'PIN changed: use the new PIN from now on.' };
    }
    this.setDisplay(dev, [result.deviceText], onProgress);
    this.addLog('info', 'bank', `${customer.customerId}: PIN change ${result.verdict}`);
    this.stage('done', onProgress);
    return result;
  }

  async deviceWipe(deviceId: string, onProgress: ProgressSink): Promise<WipeResult> {
    const dev = this.device(deviceId);
    const s = dev.status;
    if (!s.connected) throw appError('deviceDisconnected', `${s.serial} is not connected`);
    if (s.tamper === 'tampered') throw appError('tampered', `${s.serial} reports TAMPERED`);
    if (s.lifecycle === 'revoked') throw appError('revoked', `${s.serial} was revoked by the bank`);
    if (s.lifecycle === 'manufactured') throw appError('notInitialised', `${s.serial} has nothing to wipe`);
    this.stage('sendingToDevice', onProgress);
    await this.exchange(dev, 'wipe request');
    this.setDisplay(dev, ['Wipe this PIN pad?', 'Erases its keys, pairings', 'and payment data; your bank', 'binding ends.', 'OK = wipe, X = keep'], onProgress);
    if (!(await this.waitForUser(dev, 'confirm', `wipe-${deviceId}`, onProgress))) {
      this.setDisplay(dev, ['Cancelled: not wiped'], onProgress);
      throw appError('userCancelled', 'the wipe was cancelled on the PIN pad');
    }
    const cust = s.customerId ? this.customers.get(s.customerId) : undefined;
    if (cust && cust.deviceId === dev.id) cust.deviceId = null;
    for (const [id, session] of this.sessions) if (session.deviceId === dev.id) this.sessions.delete(id);
    Object.assign(s, { lifecycle: 'manufactured', customerId: null, paired: false, lock: 'unlocked', indicator: 'off' });
    this.setDisplay(dev, ['Not initialised', 'Wiped: keys and pairings erased'], onProgress);
    this.stage('sendingToBank', onProgress);
    await this.exchange(dev, 'wipe receipt');
    this.addLog('warn', 'device', `${s.serial}: wiped by its owner; the bank ended the binding`);
    this.emitDevices();
    this.stage('done', onProgress);
    return {
      serial: s.serial,
      bankNotified: true,
      message: `${s.serial} is wiped: its keys, pairings and payment data are erased, and your bank ended its link to you. A branch can set it up again for a new owner.`,
    };
  }

  async logout(sessionId: string): Promise<LogoutResult> {
    const session = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    if (!session) return { bankEnded: false, deviceCleared: false, message: 'This session had already ended.' };
    this.addLog('info', 'bank', 'Session closed at the bank');
    const dev = this.devices.get(session.deviceId);
    if (!dev?.status.connected) {
      return { bankEnded: true, deviceCleared: false, message: 'Logged out at the bank. The PIN pad was not connected; it drops its session keys when it restarts.' };
    }
    this.setDisplay(dev, ['Session ended']);
    this.addLog('info', 'device', `${dev.status.serial} dropped its session keys (bank-signed EndSession)`);
    return { bankEnded: true, deviceCleared: true, message: 'Logged out: the bank ended the session and the PIN pad dropped its session keys.' };
  }

  // payment -------------------------------------------------------------

  async paymentPrepare(r: PaymentRequest): Promise<PreparedPayment> {
    const session = this.sessions.get(r.sessionId);
    if (!session) throw appError('notLoggedIn', 'log in first');
    // As the core (app::guard): nothing reaches the bank for a device that cannot approve safely.
    this.requireUsable(this.device(session.deviceId), { paired: true });
    if (!/^[1-9][0-9]*$/.test(r.amountMinor)) throw appError('invalidInput', 'amount must be more than zero');
    if (!r.payeeName.trim()) throw appError('invalidInput', 'payee name is empty');
    const acct = r.payeeAccount.replace(/\s+/g, '');
    if (!isValidAccount(acct)) throw appError('invalidInput', 'not an account number (an IBAN, or 16 to 19 digits)');
    if (!/^[A-Z]{3}$/.test(r.currency)) throw appError('invalidInput', 'currency must be a 3-letter code');
    if (!session.accounts.includes(r.fromAccount)) throw appError('invalidInput', 'not one of your accounts');
    await sleep(this.stepMs / 2);
    const p: Payment = {
      paymentId: this.nextId('pay'),
      fromAccount: r.fromAccount,
      payeeName: r.payeeName.trim(),
      payeeAccount: groupAccount(acct),
      amountMinor: r.amountMinor,
      currency: r.currency,
      reference: r.reference.trim(),
      sessionId: r.sessionId,
      state: 'prepared',
    };
    this.payments.set(p.paymentId, p);
    this.addLog('info', 'bank', `Payment ${p.paymentId} prepared`);
    const { sessionId: _s, state: _st, ...prepared } = p;
    return clone(prepared);
  }

  async paymentApprove(paymentId: string, onProgress: ProgressSink): Promise<PaymentResult> {
    const p = this.payments.get(paymentId);
    if (!p) throw appError('notFound', `no payment ${paymentId}`);
    if (p.state !== 'prepared') throw appError('invalidInput', 'this payment was already sent');
    const session = this.sessions.get(p.sessionId);
    if (!session) throw appError('notLoggedIn', 'the session has ended; log in again');
    const dev = this.device(session.deviceId);
    if (!dev.status.connected) throw appError('deviceDisconnected', `${dev.status.serial} is not connected`);
    this.stage('sendingToDevice', onProgress);
    await this.exchange(dev, 'payment request');
    // CN103106582A: the secure processor checks the tamper switch first.
    if (dev.status.tamper === 'tampered') {
      this.setIndicator(dev, 'danger', onProgress);
      this.setDisplay(dev, ['DANGER', 'Device tampered', 'Payment refused'], onProgress);
      p.state = 'done';
      this.addLog('error', 'device', `${dev.status.serial}: payment refused, device is tampered`);
      this.stage('done', onProgress);
      return { paymentId, outcome: 'refused', indicator: 'danger', reason: 'tampered', deviceLines: [...dev.display], bankReference: null, pinTriesLeft: null };
    }
    this.requireUsable(dev, { paired: true, bound: true });
    p.state = 'approving';
    this.setIndicator(dev, 'off', onProgress);
    this.setDisplay(dev, [`Pay ${money(p.amountMinor, p.currency)}`, `To ${p.payeeName}`, `Acct ...${lastFour(p.payeeAccount)}`, 'Enter PIN, then OK'], onProgress);
    try {
      await this.waitForUser(dev, 'pin', paymentId, onProgress);
    } catch (e) {
      p.state = 'prepared';
      throw e;
    }
    const sealed = dev.sealPin();
    this.setDisplay(dev, ['Sending to bank...'], onProgress);
    this.stage('sendingToBank', onProgress);
    await this.exchange(dev, 'PIN block and MAC');
    this.addLog('info', 'bank', `Payment ${paymentId}: MAC, counter and PIN block checked`);
    const customer = this.customers.get(session.customerId)!;
    this.stage('verifyingResponse', onProgress);
    await this.exchange(dev, 'bank response');
    p.state = 'done';
    let result: PaymentResult;
    if (dev.faults.corrupt) {
      dev.faults.corrupt = false;
      this.setIndicator(dev, 'danger', onProgress);
      this.setDisplay(dev, ['DANGER', 'Bank reply failed check', 'Payment refused'], onProgress);
      this.addLog('error', 'device', `${dev.status.serial}: bank response MAC did not verify; danger state`);
      result = { paymentId, outcome: 'refused', indicator: 'danger', reason: 'bankResponseInvalid', deviceLines: [...dev.display], bankReference: null, pinTriesLeft: null };
    } else if ((this.wrongPins.get(session.customerId) ?? 0) >= MAX_WRONG_PINS) {
      // As the sandbox bank: a blocked PIN stays blocked, the right PIN included.
      this.setIndicator(dev, 'safe', onProgress);
      this.setDisplay(dev, ['Declined', 'Account blocked'], onProgress);
      this.addLog('warn', 'bank', `Payment ${paymentId} declined: PIN blocked`);
      result = { paymentId, outcome: 'declined', indicator: 'safe', reason: 'pinBlocked', deviceLines: [...dev.display], bankReference: null, pinTriesLeft: null };
    } else if (!sealed.matches(customer.pvv)) {
      const wrong = (this.wrongPins.get(session.customerId) ?? 0) + 1;
      this.wrongPins.set(session.customerId, wrong);
      const left = MAX_WRONG_PINS - wrong;
      this.setIndicator(dev, 'safe', onProgress);
      this.setDisplay(dev, ['Declined', 'Wrong PIN'], onProgress);
      this.addLog('warn', 'bank', `Payment ${paymentId} declined: PIN did not verify`);
      result =
        left > 0
          ? { paymentId, outcome: 'declined', indicator: 'safe', reason: 'wrongPin', deviceLines: [...dev.display], bankReference: null, pinTriesLeft: left }
          : { paymentId, outcome: 'declined', indicator: 'safe', reason: 'pinBlocked', deviceLines: [...dev.display], bankReference: null, pinTriesLeft: null };
    } else if (BigInt(p.amountMinor) > SANDBOX.balanceMinor) {
      this.setIndicator(dev, 'safe', onProgress);
      this.setDisplay(dev, ['Declined', 'Insufficient funds'], onProgress);
      this.addLog('warn', 'bank', `Payment ${paymentId} declined: insufficient funds`);
      result = { paymentId, outcome: 'declined', indicator: 'safe', reason: 'insufficientFunds', deviceLines: [...dev.display], bankReference: null, pinTriesLeft: null };
    } else {
      const ref = `J${String(this.seq).padStart(8, '0')}`;
      this.wrongPins.delete(session.customerId);
      this.setIndicator(dev, 'safe', onProgress);
      this.setDisplay(dev, ['Approved', money(p.amountMinor, p.currency)], onProgress);
      this.addLog('info', 'bank', `Payment ${paymentId} journaled once as ${ref}`);
      result = { paymentId, outcome: 'approved', indicator: 'safe', reason: 'none', deviceLines: [...dev.display], bankReference: ref, pinTriesLeft: null };
    }
    this.history.unshift({ customerId: session.customerId, record: mockRecord(p, result) });
    this.stage('done', onProgress);
    return result;
  }

  async paymentHistory(sessionId: string, before: string | null): Promise<PaymentHistory> {
    const session = this.sessions.get(sessionId);
    if (!session) throw appError('notLoggedIn', 'the session has ended; log in again');
    await sleep(this.stepMs / 2);
    const mine = this.history.filter((h) => h.customerId === session.customerId).map((h) => clone(h.record));
    return pageOf(mine, before);
  }

  async paymentCancel(paymentId: string): Promise<void> {
    for (const dev of this.devices.values()) {
      if (dev.waiter?.tag === paymentId) {
        this.setDisplay(dev, ['Cancelled']);
        dev.waiter.fail(appError('userCancelled', 'cancelled in the app'));
      }
    }
    const p = this.payments.get(paymentId);
    if (p && p.state !== 'done') p.state = 'done';
  }

  // confirmations ------------------------------------------------------

  async confirmationsList(): Promise<ConfirmationRequest[]> {
    return clone(this.confirmations);
  }

  async confirmationApprove(requestId: string, deviceId: string, onProgress: ProgressSink): Promise<ConfirmationResult> {
    const req = this.confirmations.find((r) => r.requestId === requestId);
    if (!req) throw appError('notFound', `no pending request ${requestId}`);
    const dev = this.device(deviceId);
    if (!dev.status.connected) throw appError('deviceDisconnected', `${dev.status.serial} is not connected`);
    this.stage('sendingToDevice', onProgress);
    await this.exchange(dev, 'confirmation request');
    if (dev.status.tamper === 'tampered') {
      this.setIndicator(dev, 'danger', onProgress);
      this.setDisplay(dev, ['DANGER', 'Device tampered', 'Request refused'], onProgress);
      return { requestId, outcome: 'refused', indicator: 'danger', reason: 'tampered', deviceLines: [...dev.display] };
    }
    this.requireUsable(dev, { paired: true, bound: true });
    this.setIndicator(dev, 'off', onProgress);
    this.setDisplay(dev, ['Confirm payment', money(req.amountMinor, req.currency), `To ${req.payeeName}`, 'OK = sign  Cancel = no'], onProgress);
    const yes = await this.waitForUser(dev, 'confirm', requestId, onProgress);
    this.confirmations = this.confirmations.filter((r) => r.requestId !== requestId);
    if (!yes) {
      this.setDisplay(dev, ['Not confirmed'], onProgress);
      this.addLog('info', 'device', `Request ${req.orderId} rejected on the device`);
      this.stage('done', onProgress);
      return { requestId, outcome: 'rejected', indicator: dev.status.indicator, reason: 'userRejected', deviceLines: [...dev.display] };
    }
    this.stage('sendingToBank', onProgress);
    await this.exchange(dev, 'signature');
    if (dev.faults.corrupt) {
      dev.faults.corrupt = false;
      this.addLog('error', 'bank', `Request ${req.orderId}: signature did not verify against the device certificate`);
      throw appError('bankRejected', 'the bank could not verify the device signature');
    }
    this.setIndicator(dev, 'safe', onProgress);
    this.setDisplay(dev, ['Signed', money(req.amountMinor, req.currency)], onProgress);
    this.addLog('info', 'bank', `Request ${req.orderId}: ECDSA signature verified; payment confirmed`);
    this.stage('done', onProgress);
    return { requestId, outcome: 'signed', indicator: 'safe', reason: 'none', deviceLines: [...dev.display] };
  }

  // staff ---------------------------------------------------------------

  async staffSignIn(staffId: string, password: string): Promise<StaffSession> {
    await sleep(this.stepMs / 2);
    const s = SANDBOX.staff.find((x) => x.staffId === staffId.trim());
    if (!s || s.password !== password) {
      this.addLog('warn', 'bank', 'Staff sign-in refused');
      throw appError('staffAuthFailed', 'staff ID or password not accepted');
    }
    this.staff = { staffId: s.staffId, displayName: s.displayName, role: s.role, ...roleGrants(s.role) };
    this.addLog('info', 'bank', `Staff ${s.staffId} signed in (${s.role})`);
    return { ...this.staff };
  }

  async staffSignOut(): Promise<void> {
    if (this.staff) this.addLog('info', 'bank', `Staff ${this.staff.staffId} signed out`);
    this.staff = null;
  }

  private requireStaff(role?: StaffRole): StaffSession {
    if (!this.staff) throw appError('staffAuthRequired', 'staff sign-in required');
    if (role === 'operator' && this.staff.role !== 'operator') {
      throw appError('staffNotAllowed', 'this needs an operator with tamper-reset authority');
    }
    return this.staff;
  }

  private result(action: StaffActionResult['action'], dev: MockDevice, detail: string): StaffActionResult {
    this.emitDevices();
    return { action, deviceId: dev.id, detail, device: clone(dev.status) };
  }

  async staffInitialise(deviceId: string, onProgress: ProgressSink): Promise<StaffActionResult> {
    this.requireStaff();
    const dev = this.device(deviceId);
    this.requireUsable(dev);
    if (dev.status.lifecycle !== 'manufactured') throw appError('invalidInput', `${dev.status.serial} is already ${dev.status.lifecycle}`);
    this.stage('contactingBank', onProgress);
    this.setDisplay(dev, ['Bank initialisation'], onProgress);
    await this.exchange(dev, 'attestation certificate');
    this.addLog('info', 'bank', `${dev.status.serial}: attestation certificate valid (issuing CA)`);
    this.stage('sendingToDevice', onProgress);
    await this.exchange(dev, 'key-block protection key');
    if (dev.faults.corrupt) {
      dev.faults.corrupt = false;
      this.setDisplay(dev, ['Key check failed'], onProgress);
      throw appError('keyCheckFailed', 'the KCV from the device did not match the bank');
    }
    dev.status.lifecycle = 'initialised';
    this.setDisplay(dev, ['Initialised', 'KCV matches'], onProgress);
    this.addLog('info', 'bank', `${dev.status.serial}: initialised; KCV matched`);
    this.stage('done', onProgress);
    return this.result('initialise', dev, 'Key-block protection key installed; KCV matched');
  }

  async staffEnrol(deviceId: string, customerId: string, onProgress: ProgressSink): Promise<StaffActionResult> {
    this.requireStaff();
    const dev = this.device(deviceId);
    this.requireUsable(dev);
    if (dev.status.lifecycle === 'manufactured') throw appError('notInitialised', `${dev.status.serial} must be initialised first`);
    const customer = this.customers.get(customerId.trim().toUpperCase());
    if (!customer) throw appError('notFound', `the bank has no customer ${customerId}`);
    this.stage('sendingToDevice', onProgress);
    await this.exchange(dev, 'PIN enrolment');
    this.setDisplay(dev, ['Choose a PIN', `${MOCK_PIN_LENGTH} digits, then OK`], onProgress);
    await this.waitForUser(dev, 'pin', `enrol-${deviceId}`, onProgress);
    const first = dev.sealPin();
    this.setDisplay(dev, ['Repeat the PIN', 'then OK'], onProgress);
    await this.waitForUser(dev, 'pin', `enrol-${deviceId}`, onProgress);
    const second = dev.sealPin();
    if (!first.sameAs(second)) {
      this.setDisplay(dev, ['PINs differ', 'Try again'], onProgress);
      throw appError('invalidInput', 'the two PIN entries on the device were different');
    }
    this.stage('sendingToBank', onProgress);
    await this.exchange(dev, 'PIN block');
    customer.pvv = second.toVerificationValue();
    this.setDisplay(dev, ['PIN set'], onProgress);
    this.addLog('info', 'bank', `${customer.customerId}: PIN verification value stored by the HSM`);
    this.stage('done', onProgress);
    return this.result('enrol', dev, `${customer.customerId} chose a PIN on the device`);
  }

  async staffBind(deviceId: string, customerId: string): Promise<StaffActionResult> {
    this.requireStaff();
    const dev = this.device(deviceId);
    this.requireUsable(dev);
    if (dev.status.lifecycle === 'manufactured') throw appError('notInitialised', `${dev.status.serial} must be initialised first`);
    if (dev.status.lifecycle === 'bound') throw appError('invalidInput', `${dev.status.serial} is already bound to ${dev.status.customerId}`);
    const customer = this.customers.get(customerId.trim().toUpperCase());
    if (!customer) throw appError('notFound', `the bank has no customer ${customerId}`);
    if (!customer.pvv) throw appError('notEnrolled', `${customer.customerId} has not chosen a PIN yet`);
    if (customer.deviceId && customer.deviceId !== deviceId) {
      throw appError('invalidInput', `${customer.customerId} already has a device; use rebind`);
    }
    await this.exchange(dev, 'activation record');
    dev.status.lifecycle = 'bound';
    dev.status.customerId = customer.customerId;
    customer.deviceId = deviceId;
    this.setDisplay(dev, ['Bound to', customer.customerId]);
    this.addLog('info', 'bank', `${dev.status.serial} bound to ${customer.customerId}`);
    return this.result('bind', dev, `${dev.status.serial} is bound to ${customer.customerId}`);
  }

  private revokeDevice(dev: MockDevice): void {
    const cust = dev.status.customerId ? this.customers.get(dev.status.customerId) : undefined;
    if (cust && cust.deviceId === dev.id) cust.deviceId = null;
    dev.status.lifecycle = 'revoked';
    dev.status.paired = false;
    if (dev.status.connected) {
      this.setDisplay(dev, ['Revoked by bank', 'Keys erased']);
      dev.status.indicator = 'off';
    }
    // As the core does: a customer logged in with the device gets the bank's wipe pushed, and
    // the login ends.
    for (const [id, session] of this.sessions) {
      if (session.deviceId !== dev.id) continue;
      this.sessions.delete(id);
      this.emit({
        type: 'bankCommand',
        deviceId: dev.id,
        serial: dev.status.serial,
        command: 'wipe',
        applied: dev.status.connected,
        lifecycle: dev.status.connected ? 'revoked' : null,
        lock: dev.status.connected ? dev.status.lock : null,
        sessionEnded: true,
        message: dev.status.connected
          ? `Your bank revoked this PIN pad (${dev.status.serial}); it has been wiped and can no longer be used. You are logged out.`
          : `Your bank revoked this PIN pad (${dev.status.serial}) and ended your session, but the PIN pad has not been wiped yet (it is not connected); it is wiped when it next reaches the bank or this app.`,
      });
    }
    this.addLog('warn', 'bank', `${dev.status.serial} revoked; ${dev.status.connected ? 'bank-signed wipe delivered' : 'wipe queued for next contact'}`);
  }

  async staffRevoke(deviceId: string): Promise<StaffActionResult> {
    this.requireStaff();
    const dev = this.device(deviceId);
    if (dev.status.lifecycle === 'revoked') throw appError('invalidInput', `${dev.status.serial} is already revoked`);
    await sleep(this.stepMs);
    this.revokeDevice(dev);
    return this.result('revoke', dev, `${dev.status.serial} revoked; logins refused`);
  }

  async staffRebind(fromDeviceId: string, toDeviceId: string): Promise<StaffActionResult> {
    this.requireStaff();
    const from = this.device(fromDeviceId);
    const to = this.device(toDeviceId);
    if (from === to) throw appError('invalidInput', 'choose two different devices');
    const customerId = from.status.customerId;
    if (!customerId) throw appError('notBound', `${from.status.serial} has no customer`);
    this.requireUsable(to);
    if (to.status.lifecycle !== 'initialised') throw appError('invalidInput', `${to.status.serial} must be initialised and not bound`);
    await this.exchange(to, 'activation record');
    if (from.status.lifecycle !== 'revoked') this.revokeDevice(from);
    const customer = this.customers.get(customerId)!;
    to.status.lifecycle = 'bound';
    to.status.customerId = customerId;
    customer.deviceId = to.id;
    this.setDisplay(to, ['Bound to', customerId]);
    this.addLog('info', 'bank', `${customerId} moved from ${from.status.serial} to ${to.status.serial}`);
    return this.result('rebind', to, `${customerId} moved to ${to.status.serial}; ${from.status.serial} revoked`);
  }

  async staffTamperReset(deviceId: string): Promise<StaffActionResult> {
    const staff = this.requireStaff('operator');
    const dev = this.device(deviceId);
    if (!dev.status.connected) throw appError('deviceDisconnected', `${dev.status.serial} is not connected`);
    if (dev.status.tamper !== 'tampered') throw appError('invalidInput', `${dev.status.serial} is not tampered`);
    await this.exchange(dev, 'operator reset token');
    const cust = dev.status.customerId ? this.customers.get(dev.status.customerId) : undefined;
    if (cust && cust.deviceId === dev.id) cust.deviceId = null;
    dev.status.tamper = 'clear';
    dev.status.lifecycle = 'manufactured';
    dev.status.customerId = null;
    dev.status.paired = false;
    dev.status.indicator = 'off';
    this.setDisplay(dev, ['Tamper reset', 'Initialise again']);
    this.addLog('info', 'bank', `${dev.status.serial}: tamper reset with operator token signed for ${staff.staffId}`);
    return this.result('tamperReset', dev, 'Tamper state cleared with an operator-signed token; initialise the device again');
  }

  // QA ------------------------------------------------------------------

  async qaMockStart(name: string): Promise<DeviceStatus> {
    const dev = this.addMock(name.trim() || `PinPad Sim ${this.simSerial + 1}`);
    this.addLog('info', 'qa', `Mock device ${dev.status.serial} started`);
    this.emitDevices();
    return clone(dev.status);
  }

  async qaMockStop(deviceId: string): Promise<void> {
    const dev = this.device(deviceId);
    dev.waiter?.fail(appError('deviceDisconnected', 'the mock device was stopped'));
    this.devices.delete(deviceId);
    this.addLog('info', 'qa', `Mock device ${dev.status.serial} stopped`);
    this.emitDevices();
  }

  async qaKeyPress(deviceId: string, key: Key, promptId?: number): Promise<void> {
    const dev = this.device(deviceId);
    if (!dev.status.mock) throw appError('invalidInput', 'only a mock device has an on-screen keypad');
    if (!dev.status.connected) throw appError('deviceDisconnected', `${dev.status.serial} is not connected`);
    // The log never names a digit key, not even for QA.
    const label = /^[0-9]$/.test(key) ? 'a digit' : key.toUpperCase();
    this.addLog('info', 'qa', `${dev.status.serial}: key pressed (${label})`);
    // Like the real device: a key for a prompt that has gone, or with none up, is dropped.
    if (!dev.waiter || (promptId !== undefined && promptId !== dev.promptSeq)) return;
    dev.waiter.onKey(key);
  }

  async qaTripTamper(deviceId: string): Promise<void> {
    const dev = this.device(deviceId);
    dev.status.tamper = 'tampered';
    dev.status.indicator = 'danger';
    dev.status.paired = false;
    dev.waiter?.fail(appError('tampered', 'the device was tampered with'));
    this.setDisplay(dev, ['TAMPERED', 'Keys erased', 'Call your bank']);
    this.addLog('error', 'device', `${dev.status.serial}: tamper switch tripped; payment keys and data wiped`);
    this.emitDevices();
  }

  async qaInjectFault(deviceId: string, fault: Fault): Promise<void> {
    const dev = this.device(deviceId);
    if (fault.kind === 'delay') dev.faults.delayMs = Math.max(0, Math.min(fault.ms, 30_000));
    else dev.faults[fault.kind] = true;
    if (fault.kind === 'userTooSlow' && dev.waiter) {
      dev.faults.userTooSlow = false;
      dev.waiter.fail(appError('userTooSlow', 'the device timed out waiting for a key'));
      this.setDisplay(dev, ['Timed out', 'No key pressed']);
    }
    const what = fault.kind === 'delay' ? `delay ${dev.faults.delayMs} ms` : fault.kind;
    this.addLog('warn', 'qa', `${dev.status.serial}: fault armed: ${what}`);
  }

  async qaClearFaults(deviceId: string): Promise<void> {
    const dev = this.device(deviceId);
    dev.faults = noFaults();
    this.addLog('info', 'qa', `${dev.status.serial}: faults cleared`);
  }

  async qaPushConfirmation(deviceId: string): Promise<ConfirmationRequest> {
    const dev = this.device(deviceId);
    const customer = dev.status.customerId ? this.customers.get(dev.status.customerId) : undefined;
    const n = this.confirmations.length + this.idSeq;
    const req: ConfirmationRequest = {
      requestId: this.nextId('req'),
      orderId: `ORD-${7800 + n}`,
      payerAccount: customer?.accounts[0] ?? '6222 0210 0000 0000',
      payeeName: 'JD.com',
      payeeAccount: '6222 0800 1122 3344',
      amountMinor: String(1000 + (n % 9) * 1150),
      currency: 'CNY',
      receivedAt: new Date().toISOString(),
    };
    this.confirmations.push(req);
    this.addLog('info', 'bank', `Request ${req.orderId} pushed to the app (server-sent event)`);
    this.emit({ type: 'confirmationPushed', request: req });
    return clone(req);
  }

  // logs and settings ------------------------------------------------------

  async logsList(limit: number): Promise<LogEntry[]> {
    return clone(this.log.slice(-Math.max(0, limit)));
  }

  async logsExport(): Promise<LogExport> {
    let redactions = 0;
    const lines = this.log.map((e) => {
      // Anything that looks like key material (long runs of letters and digits) goes.
      const msg = e.message.replace(REDACT, () => {
        redactions += 1;
        return '[redacted]';
      });
      return `${e.time} ${e.level.toUpperCase()} ${e.source} ${msg}`;
    });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    return { fileName: `pinbridge-log-${stamp}.txt`, content: lines.join('\n') + '\n', redactions, savedTo: null };
  }

  async settingsGet(): Promise<Settings> {
    return { ...this.settings };
  }

  async settingsSet(s: Settings): Promise<Settings> {
    const url = s.bankUrl.trim();
    if (url !== '') {
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        throw appError('invalidInput', 'the bank URL is not a valid URL');
      }
      const local = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && local)) {
        throw appError('invalidInput', 'the bank URL must use https (http only for this computer)');
      }
    }
    const pem = s.bankCaPem?.trim() || null;
    if (pem !== null && !pem.startsWith('-----BEGIN CERTIFICATE-----')) {
      throw appError('invalidInput', 'the CA must be a PEM certificate (-----BEGIN CERTIFICATE-----)');
    }
    this.settings = { bankUrl: url, bankCaPem: pem, language: s.language, theme: s.theme, staffMode: s.staffMode, firstRunDone: s.firstRunDone };
    this.addLog('info', 'app', `Settings saved (bank: ${url || 'embedded sandbox'})`);
    return { ...this.settings };
  }
}
