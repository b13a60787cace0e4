// The actions the screens trigger: call the backend, feed results and progress into the store.
// Every backend failure becomes an AppError in the state of the screen that asked.
import type { Backend, ProgressSink } from './api/backend';
import { appError, toAppError, type AppError } from './api/errors';
import type {
  BankDevice,
  DeviceProgress,
  Fault,
  Key,
  Language,
  LogoutResult,
  LossReport,
  PinChangeResult,
  SerialAction,
  Settings,
  StaffActionResult,
  Theme,
  WipeResult,
} from './api/types';
import type { MessageKey } from './i18n';
import { BLOCK_KIND, paymentBlock } from './safety';
import {
  activeDevice,
  applyEvent,
  applyProgress,
  emptyPaymentForm,
  EMPTY_HISTORY,
  IDLE_LIVE,
  initialState,
  upsertDevice,
  validatePaymentForm,
  wantsFirstRun,
  type PaymentForm,
  type State,
} from './state';
import { createStore, type Store } from './store';

export type Controller = ReturnType<typeof createController>;

export function createController(backend: Backend, store: Store<State> = createStore(initialState())) {
  const set = store.set;

  const notice = (screen: string, error: AppError | null, info: MessageKey | null = null, infoParams?: Record<string, string | number>): void =>
    set((s) => ({ ...s, notice: { screen, error, info, infoParams } }));

  /** Run a one-shot action; failures land in the notice of `screen`. Returns false on failure. */
  async function attempt(screen: string, fn: () => Promise<void>, okInfo: MessageKey | null = null): Promise<boolean> {
    try {
      await fn();
      set((s) => ({ ...s, notice: okInfo ? { screen, error: null, info: okInfo } : s.notice?.screen === screen ? null : s.notice }));
      return true;
    } catch (e) {
      notice(screen, toAppError(e));
      return false;
    }
  }

  const activeId = (): string | null => activeDevice(store.get())?.deviceId ?? null;

  const c = {
    store,
    backend,

    async start(): Promise<void> {
      await backend.subscribe((ev) => set((s) => applyEvent(s, ev)));
      const [info, settings, devices, confirmations, logs, keyStore] = await Promise.all([
        backend.appInfo(),
        backend.settingsGet(),
        backend.listDevices(),
        backend.confirmationsList(),
        backend.logsList(200),
        backend.keyStoreStatus(),
      ]);
      set((s) => ({
        ...s,
        info,
        settings,
        devices,
        confirmations,
        logs,
        keyStore,
        lang: settings.language,
        theme: settings.theme,
        firstRun: wantsFirstRun(settings, devices),
      }));
    },

    /** The first run is over (finished or skipped): not offered again, on this computer. */
    async finishFirstRun(): Promise<void> {
      set((s) => ({ ...s, firstRun: false }));
      const cur = store.get().settings;
      if (cur && !cur.firstRunDone) await c.saveSettings({ ...cur, firstRunDone: true }, true);
    },

    setLanguage(lang: Language): void {
      set((s) => ({ ...s, lang }));
      const cur = store.get().settings;
      if (cur && cur.language !== lang) void c.saveSettings({ ...cur, language: lang }, true);
    },

    setTheme(theme: Theme): void {
      set((s) => ({ ...s, theme }));
    },

    clearNotice(): void {
      set((s) => ({ ...s, notice: null }));
    },

    // devices -----------------------------------------------------------
    async refreshDevices(): Promise<void> {
      await attempt('devices', async () => {
        const devices = await backend.listDevices();
        set((s) => ({ ...s, devices }));
      });
    },
    async connect(deviceId: string): Promise<void> {
      await attempt('devices', async () => {
        const d = await backend.connect(deviceId);
        set((s) => ({ ...s, devices: upsertDevice(s.devices, d), activeDeviceId: s.activeDeviceId ?? d.deviceId }));
      });
    },
    async disconnect(deviceId: string): Promise<void> {
      await attempt('devices', async () => {
        await backend.disconnect(deviceId);
      });
    },
    /** The passphrase of the pairing key store (a computer without an OS key store); a new
     *  store's passphrase is typed twice. The PIN is never asked for here or anywhere on the PC. */
    async unlockKeyStore(passphrase: string, again: string | null): Promise<boolean> {
      if (again !== null && again !== passphrase) {
        notice('keyStore', null, 'keyStore.differ');
        return false;
      }
      return attempt('keyStore', async () => {
        const keyStore = await backend.keyStoreUnlock(passphrase);
        set((s) => ({ ...s, keyStore }));
      });
    },
    useDevice(deviceId: string): void {
      set((s) => ({ ...s, activeDeviceId: deviceId }));
    },

    // pairing -------------------------------------------------------------
    async pair(): Promise<void> {
      const deviceId = activeId();
      if (!deviceId) {
        set((s) => ({ ...s, pairing: { step: 'start', busy: false, error: { kind: 'deviceNotFound', message: '' } } }));
        return;
      }
      set((s) => ({ ...s, pairing: { step: 'start', busy: true, error: null } }));
      let pairingId = '';
      try {
        const start = await backend.pairingBegin(deviceId);
        pairingId = start.pairingId;
        const lines = store.get().displays[deviceId] ?? [];
        set((s) => ({ ...s, pairing: { step: 'compare', pairingId, code: start.code, live: { ...IDLE_LIVE, lines } } }));
        const device = await backend.pairingConfirm(pairingId, (ev) =>
          set((s) => (s.pairing.step === 'compare' && s.pairing.pairingId === pairingId ? { ...s, pairing: { ...s.pairing, live: applyProgress(s.pairing.live, ev) } } : s)),
        );
        set((s) => ({ ...s, devices: upsertDevice(s.devices, device), pairing: { step: 'done', device } }));
      } catch (e) {
        set((s) => ({ ...s, pairing: { step: 'start', busy: false, error: toAppError(e) } }));
      }
    },
    async cancelPairing(): Promise<void> {
      const p = store.get().pairing;
      if (p.step === 'compare') await backend.pairingCancel(p.pairingId).catch(() => undefined);
    },
    resetPairing(): void {
      set((s) => ({ ...s, pairing: { step: 'start', busy: false, error: null } }));
    },

    // login -----------------------------------------------------------------
    setLoginCustomer(customerId: string): void {
      set((s) => (s.login.step === 'form' ? { ...s, login: { ...s.login, customerId } } : s));
    },
    async login(): Promise<void> {
      const st = store.get();
      if (st.login.step !== 'form') return;
      const customerId = st.login.customerId.trim();
      const deviceId = activeId();
      if (!customerId) {
        set((s) => ({ ...s, login: { step: 'form', customerId, busy: false, error: { kind: 'invalidInput', message: '' } } }));
        return;
      }
      if (!deviceId) {
        set((s) => ({ ...s, login: { step: 'form', customerId, busy: false, error: { kind: 'deviceNotFound', message: '' } } }));
        return;
      }
      set((s) => ({ ...s, login: { step: 'device', customerId, live: IDLE_LIVE } }));
      try {
        const session = await backend.login(deviceId, customerId, (ev) =>
          set((s) => (s.login.step === 'device' ? { ...s, login: { ...s.login, live: applyProgress(s.login.live, ev) } } : s)),
        );
        const bankCommands = { ...store.get().bankCommands };
        delete bankCommands[deviceId];
        set((s) => ({
          ...s,
          session,
          loggedOut: null,
          // A new login: what the bank did to the device before is history.
          bankCommands,
          login: { step: 'done' },
          payment: { step: 'form', form: emptyPaymentForm(session.accounts[0] ?? ''), errors: {}, error: null, busy: false },
          history: EMPTY_HISTORY,
        }));
      } catch (e) {
        set((s) => ({ ...s, login: { step: 'form', customerId, busy: false, error: toAppError(e) } }));
      }
    },
    async logout(): Promise<void> {
      const session = store.get().session;
      // Forgotten here whatever the bank says; the result says what ended where.
      const loggedOut = session
        ? await backend.logout(session.sessionId).catch(
            (e: unknown): LogoutResult => ({ bankEnded: false, deviceCleared: false, message: toAppError(e).message }),
          )
        : null;
      set((s) => ({
        ...s,
        session: null,
        loggedOut,
        login: { step: 'form', customerId: session?.customerId ?? '', error: null, busy: false },
        payment: { step: 'form', form: emptyPaymentForm(), errors: {}, error: null, busy: false },
        history: EMPTY_HISTORY,
      }));
    },

    // history -------------------------------------------------------------
    /** The newest page of the customer's payments, or (`more`) the next older page after those shown. */
    async loadHistory(more = false): Promise<void> {
      const session = store.get().session;
      if (!session) return;
      const before = more ? store.get().history.nextBefore : null;
      if (more && before === null) return;
      // A fresh read starts at the list (a receipt left open on the last visit is closed).
      set((s) => ({ ...s, history: { ...s.history, sessionId: session.sessionId, loading: true, error: null, receiptId: more ? s.history.receiptId : null } }));
      try {
        const page = await backend.paymentHistory(session.sessionId, before);
        set((s) =>
          s.session?.sessionId !== session.sessionId
            ? s
            : {
                ...s,
                history: {
                  ...s.history,
                  payments: more ? [...s.history.payments, ...page.payments] : page.payments,
                  nextBefore: page.nextBefore,
                  loading: false,
                },
              },
        );
      } catch (e) {
        set((s) => ({ ...s, history: { ...s.history, loading: false, error: toAppError(e) } }));
      }
    },
    openReceipt(paymentId: string): void {
      set((s) => ({ ...s, history: { ...s.history, receiptId: paymentId } }));
    },
    closeReceipt(): void {
      set((s) => ({ ...s, history: { ...s.history, receiptId: null } }));
    },

    // payment -------------------------------------------------------------
    editPayment(patch: Partial<PaymentForm>): void {
      set((s) => (s.payment.step === 'form' ? { ...s, payment: { ...s.payment, form: { ...s.payment.form, ...patch } } } : s));
    },
    async reviewPayment(): Promise<void> {
      const st = store.get();
      if (st.payment.step !== 'form') return;
      const form = st.payment.form;
      // The same blocks as the form and the core: nothing reaches the bank for them.
      const block = paymentBlock(st);
      if (block || !st.session) {
        const kind = block ? BLOCK_KIND[block.reason] : 'notLoggedIn';
        set((s) => ({ ...s, payment: { step: 'form', form, errors: {}, busy: false, error: { kind, message: '' } } }));
        return;
      }
      const check = validatePaymentForm(form);
      if (!check.ok) {
        set((s) => ({ ...s, payment: { step: 'form', form, errors: check.errors, busy: false, error: null } }));
        return;
      }
      set((s) => ({ ...s, payment: { step: 'form', form, errors: {}, busy: true, error: null } }));
      try {
        const prepared = await backend.paymentPrepare({
          sessionId: st.session.sessionId,
          fromAccount: form.fromAccount,
          payeeName: form.payeeName.trim(),
          payeeAccount: form.payeeAccount.replace(/[\s-]+/g, '').toUpperCase(),
          amountMinor: check.amountMinor,
          currency: form.currency,
          reference: form.reference.trim(),
        });
        set((s) => ({ ...s, payment: { step: 'review', form, prepared, error: null, busy: false } }));
      } catch (e) {
        set((s) => ({ ...s, payment: { step: 'form', form, errors: {}, busy: false, error: toAppError(e) } }));
      }
    },
    backToForm(): void {
      set((s) => (s.payment.step === 'review' ? { ...s, payment: { step: 'form', form: s.payment.form, errors: {}, error: null, busy: false } } : s));
    },
    async approvePayment(): Promise<void> {
      const st = store.get();
      if (st.payment.step !== 'review') return;
      const { form, prepared } = st.payment;
      set((s) => ({ ...s, payment: { step: 'device', form, prepared, live: IDLE_LIVE } }));
      const onProgress = (ev: DeviceProgress): void =>
        set((s) => (s.payment.step === 'device' ? { ...s, payment: { ...s.payment, live: applyProgress(s.payment.live, ev) } } : s));
      try {
        const result = await backend.paymentApprove(prepared.paymentId, onProgress);
        set((s) => ({
          ...s,
          payment: { step: 'result', form, prepared, live: s.payment.step === 'device' ? s.payment.live : IDLE_LIVE, result, error: null },
        }));
      } catch (e) {
        set((s) => ({
          ...s,
          payment: { step: 'result', form, prepared, live: s.payment.step === 'device' ? s.payment.live : IDLE_LIVE, result: null, error: toAppError(e) },
        }));
      }
    },
    async cancelPayment(): Promise<void> {
      const p = store.get().payment;
      if (p.step === 'device' || p.step === 'review') await backend.paymentCancel(p.prepared.paymentId).catch(() => undefined);
      if (p.step === 'review') c.backToForm();
    },
    /** Back to the form with the details of the payment just tried (a new payment, nothing reused). */
    retryPayment(): void {
      set((s) => (s.payment.step === 'result' ? { ...s, payment: { step: 'form', form: s.payment.form, errors: {}, error: null, busy: false } } : s));
    },
    newPayment(): void {
      set((s) => ({ ...s, payment: { step: 'form', form: emptyPaymentForm(s.session?.accounts[0] ?? ''), errors: {}, error: null, busy: false } }));
    },

    // confirmations ---------------------------------------------------------
    async refreshConfirmations(): Promise<void> {
      await attempt('confirmations', async () => {
        const confirmations = await backend.confirmationsList();
        set((s) => ({ ...s, confirmations }));
      });
    },
    async approveConfirmation(requestId: string): Promise<void> {
      const deviceId = activeId();
      if (!deviceId) {
        set((s) => ({ ...s, confirm: { requestId, live: IDLE_LIVE, result: null, error: { kind: 'deviceNotFound', message: '' } } }));
        return;
      }
      set((s) => ({ ...s, confirm: { requestId, live: IDLE_LIVE, result: null, error: null } }));
      try {
        const result = await backend.confirmationApprove(requestId, deviceId, (ev) =>
          set((s) => (s.confirm.requestId === requestId ? { ...s, confirm: { ...s.confirm, live: applyProgress(s.confirm.live, ev) } } : s)),
        );
        set((s) => ({ ...s, confirm: { ...s.confirm, result } }));
      } catch (e) {
        set((s) => ({ ...s, confirm: { ...s.confirm, error: toAppError(e) } }));
      }
      const confirmations = await backend.confirmationsList().catch(() => store.get().confirmations);
      set((s) => ({ ...s, confirmations }));
    },
    closeConfirmation(): void {
      set((s) => ({ ...s, confirm: { requestId: null, live: IDLE_LIVE, result: null, error: null } }));
    },

    // staff -------------------------------------------------------------------
    async staffSignIn(staffId: string, password: string): Promise<void> {
      set((s) => ({ ...s, staffFlow: { ...s.staffFlow, busy: 'signIn', error: null, result: null } }));
      try {
        const staff = await backend.staffSignIn(staffId, password);
        set((s) => ({ ...s, staff, staffFlow: { ...s.staffFlow, busy: null } }));
      } catch (e) {
        set((s) => ({ ...s, staffFlow: { ...s.staffFlow, busy: null, error: toAppError(e) } }));
      }
    },
    /** The bank's record of a PIN pad by serial; rejects with an AppError. */
    async staffDeviceLookup(serial: string): Promise<BankDevice> {
      return backend.staffDeviceLookup(serial.trim()).catch((e: unknown) => Promise.reject(toAppError(e)));
    },
    /** Revoke, lock, unlock or unpair by serial (the screen confirmed first); rejects with an AppError. */
    async staffBySerial(serial: string, action: SerialAction): Promise<BankDevice> {
      return backend.staffBySerial(serial.trim(), action).catch((e: unknown) => Promise.reject(toAppError(e)));
    },
    /** Moves the customer of a PIN pad that is not here to the one here (the screen confirmed
     *  first, naming both and the customer); rejects with an AppError. */
    async staffRebindBySerial(fromSerial: string, toDeviceId: string, onProgress: ProgressSink): Promise<StaffActionResult> {
      const r = await backend.staffRebindBySerial(fromSerial.trim(), toDeviceId, onProgress).catch((e: unknown) => Promise.reject(toAppError(e)));
      set((s) => ({ ...s, devices: upsertDevice(s.devices, r.device) }));
      return r;
    },
    /** The logged-in customer changes their PIN on the PIN pad; rejects with an AppError. */
    async pinChange(onProgress: ProgressSink): Promise<PinChangeResult> {
      const session = store.get().session;
      if (!session) throw appError('notLoggedIn', 'log in first');
      return backend.pinChange(session.sessionId, onProgress).catch((e: unknown) => Promise.reject(toAppError(e)));
    },
    /** The owner wipes the PIN pad (the screen confirmed first; OK on the keypad); a login on
     *  it ends here too. Rejects with an AppError. */
    async deviceWipe(deviceId: string, onProgress: ProgressSink): Promise<WipeResult> {
      const r = await backend.deviceWipe(deviceId, onProgress).catch((e: unknown) => Promise.reject(toAppError(e)));
      set((s) =>
        s.session?.deviceId === deviceId
          ? { ...s, session: null, login: { step: 'form', customerId: s.session.customerId, error: null, busy: false } }
          : s,
      );
      return r;
    },
    /** The customer's loss report (the screen confirmed first); rejects with an AppError. */
    async reportLost(serial: string, customerId: string, code: string): Promise<LossReport> {
      return backend.reportLost(serial.trim(), customerId.trim(), code).catch((e: unknown) => Promise.reject(toAppError(e)));
    },
    async staffSignOut(): Promise<void> {
      await backend.staffSignOut().catch(() => undefined);
      set((s) => ({ ...s, staff: null, staffFlow: { deviceId: s.staffFlow.deviceId, busy: null, live: IDLE_LIVE, result: null, error: null } }));
    },
    staffSelectDevice(deviceId: string): void {
      set((s) => ({ ...s, staffFlow: { ...s.staffFlow, deviceId, result: null, error: null, live: IDLE_LIVE } }));
    },
    async staffAction(
      action: StaffActionResult['action'],
      args: { deviceId: string; customerId?: string; toDeviceId?: string },
    ): Promise<void> {
      set((s) => ({ ...s, staffFlow: { ...s.staffFlow, busy: action, live: IDLE_LIVE, result: null, error: null } }));
      const onProgress = (ev: DeviceProgress): void => set((s) => ({ ...s, staffFlow: { ...s.staffFlow, live: applyProgress(s.staffFlow.live, ev) } }));
      try {
        let r: StaffActionResult;
        switch (action) {
          case 'initialise':
            r = await backend.staffInitialise(args.deviceId, onProgress);
            break;
          case 'enrol':
            r = await backend.staffEnrol(args.deviceId, args.customerId ?? '', onProgress);
            break;
          case 'bind':
            r = await backend.staffBind(args.deviceId, args.customerId ?? '');
            break;
          case 'revoke':
            r = await backend.staffRevoke(args.deviceId);
            break;
          case 'rebind':
            r = await backend.staffRebind(args.deviceId, args.toDeviceId ?? '');
            break;
          case 'tamperReset':
            r = await backend.staffTamperReset(args.deviceId);
            break;
        }
        set((s) => ({ ...s, devices: upsertDevice(s.devices, r.device), staffFlow: { ...s.staffFlow, busy: null, result: r } }));
      } catch (e) {
        set((s) => ({ ...s, staffFlow: { ...s.staffFlow, busy: null, error: toAppError(e) } }));
      }
    },

    // QA ------------------------------------------------------------------------
    async qaStart(name: string): Promise<void> {
      await attempt('qa', async () => {
        const d = await backend.qaMockStart(name);
        set((s) => ({ ...s, devices: upsertDevice(s.devices, d) }));
      });
    },
    async qaStop(deviceId: string): Promise<void> {
      await attempt('qa', () => backend.qaMockStop(deviceId));
    },
    /** A key of a mock device's keypad: sent at once, never kept here. */
    async keyPress(deviceId: string, key: Key, promptId?: number): Promise<void> {
      await attempt('keypad', () => backend.qaKeyPress(deviceId, key, promptId));
    },
    async qaTripTamper(deviceId: string): Promise<void> {
      await attempt('qa', () => backend.qaTripTamper(deviceId), 'qa.info.tamperTripped');
    },
    async qaFault(deviceId: string, fault: Fault): Promise<void> {
      await attempt('qa', () => backend.qaInjectFault(deviceId, fault), 'qa.info.faultArmed');
    },
    async qaClearFaults(deviceId: string): Promise<void> {
      await attempt('qa', () => backend.qaClearFaults(deviceId), 'qa.info.faultsCleared');
    },
    async qaPushConfirmation(deviceId: string): Promise<void> {
      await attempt('qa', async () => {
        await backend.qaPushConfirmation(deviceId);
      }, 'qa.info.pushed');
    },

    // logs and settings ------------------------------------------------------------
    async refreshLogs(): Promise<void> {
      await attempt('logs', async () => {
        const logs = await backend.logsList(200);
        set((s) => ({ ...s, logs }));
      });
    },
    /** Export: returns the file for the screen to download when the backend did not save it. */
    async exportLogs(): Promise<{ fileName: string; content: string } | null> {
      try {
        const x = await backend.logsExport();
        notice('logs', null, x.savedTo ? 'logs.savedTo' : 'logs.exported', { redactions: x.redactions, path: x.savedTo ?? x.fileName });
        return x.savedTo ? null : { fileName: x.fileName, content: x.content };
      } catch (e) {
        notice('logs', toAppError(e));
        return null;
      }
    },
    async saveSettings(next: Settings, quiet = false): Promise<boolean> {
      return attempt(
        'settings',
        async () => {
          const settings = await backend.settingsSet(next);
          set((s) => ({ ...s, settings, lang: settings.language, theme: settings.theme }));
          // Leaving staff mode leaves no staff signed in behind the customer's menu.
          if (!settings.staffMode && store.get().staff) await c.staffSignOut();
        },
        quiet ? null : 'settings.saved',
      );
    },
  };
  return c;
}
