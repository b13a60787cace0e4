// Acting on a PIN pad that is not here, by its serial: staff's revoke / lock / unlock / unpair,
// and the customer's own loss report. Each asks first, naming the PIN pad and its customer.
import { useState } from 'preact/hooks';
import { toAppError, type AppError } from '../../api/errors';
import type { BankDevice, LossReport, SerialAction } from '../../api/types';
import { ErrorBox, Field, fieldAria } from '../common';
import { useController, useT } from '../context';

const ACTIONS: SerialAction[] = ['lock', 'unlock', 'unpair', 'revoke'];

/** Runs one bank call at a time, keeping its error for the screen. */
function useCall(): [boolean, AppError | null, (f: () => Promise<void>) => Promise<void>] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AppError | null>(null);
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };
  return [busy, error, run];
}

/** Staff: a PIN pad that is not plugged in here, by serial. */
export function StaffBySerial() {
  const t = useT();
  const c = useController();
  const [serial, setSerial] = useState('');
  const [found, setFound] = useState<BankDevice | null>(null);
  const [asked, setAsked] = useState<SerialAction | null>(null);
  const [done, setDone] = useState<SerialAction | null>(null);
  const [busy, error, run] = useCall();
  const customer = found?.customerId ?? t('devices.noCustomer');
  return (
    <section class="card" aria-labelledby="s-serial" data-testid="staff-by-serial">
      <h2 id="s-serial" class="card-title">
        {t('serial.title')}
      </h2>
      <p class="muted small">{t('serial.text')}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            setAsked(null);
            setDone(null);
            setFound(await c.staffDeviceLookup(serial));
          });
        }}
      >
        <Field id="serial-input" label={t('serial.serial')}>
          <input {...fieldAria('serial-input')} value={serial} onInput={(e) => setSerial((e.target as HTMLInputElement).value)} required />
        </Field>
        <button type="submit" class="btn" disabled={busy} data-testid="serial-lookup">
          {t('serial.lookup')}
        </button>
      </form>
      {found && (
        <>
          <p data-testid="serial-found">
            {t('serial.found', { serial: found.serial, state: found.state, customer })}
            {found.locked && <> · {t('lock.locked')}</>}
          </p>
          <div class="actions">
            {ACTIONS.map((a) => (
              <button
                key={a}
                type="button"
                class={`btn${a === 'revoke' ? ' btn-danger' : ''}`}
                disabled={busy || found.state === 'revoked'}
                onClick={() => {
                  setAsked(a);
                  setDone(null);
                }}
                data-testid={`serial-${a}`}
              >
                {t(`serial.action.${a}`)}
              </button>
            ))}
          </div>
        </>
      )}
      {found && asked && (
        <div class="error-box" role="alertdialog" aria-labelledby="serial-ask" data-testid="serial-confirm">
          <p id="serial-ask">{t(`serial.ask.${asked}`, { serial: found.serial, customer })}</p>
          <div class="actions">
            <button
              type="button"
              class="btn btn-danger"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  setFound(await c.staffBySerial(found.serial, asked));
                  setDone(asked);
                  setAsked(null);
                })
              }
              data-testid="serial-confirm-yes"
            >
              {t(`serial.action.${asked}`)}
            </button>
            <button type="button" class="btn" onClick={() => setAsked(null)}>
              {t('common.cancel')}
            </button>
          </div>
        </div>
      )}
      {found && done && (
        <p class="success-box" role="status" data-testid="serial-done">
          {t(`serial.done.${done}`, { serial: found.serial })}
        </p>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

/** The customer: report the PIN pad lost, with the loss-report code from the enrolment slip. */
export function ReportLost() {
  const t = useT();
  const c = useController();
  const [serial, setSerial] = useState('');
  const [customer, setCustomer] = useState('');
  const [code, setCode] = useState('');
  const [asked, setAsked] = useState(false);
  const [report, setReport] = useState<LossReport | null>(null);
  const [busy, error, run] = useCall();
  return (
    <section class="card" aria-labelledby="lost-h" data-testid="report-lost">
      <h2 id="lost-h" class="card-title">
        {t('lost.title')}
      </h2>
      <p class="muted small">{t('lost.text')}</p>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          setReport(null);
          setAsked(true);
        }}
      >
        <Field id="lost-serial" label={t('serial.serial')}>
          <input {...fieldAria('lost-serial')} value={serial} onInput={(e) => setSerial((e.target as HTMLInputElement).value)} required />
        </Field>
        <Field id="lost-customer" label={t('login.customer')}>
          <input {...fieldAria('lost-customer')} value={customer} onInput={(e) => setCustomer((e.target as HTMLInputElement).value)} required />
        </Field>
        <Field id="lost-code" label={t('lost.code')}>
          <input
            {...fieldAria('lost-code')}
            type="password"
            autocomplete="off"
            value={code}
            onInput={(e) => setCode((e.target as HTMLInputElement).value)}
            required
          />
        </Field>
        <button type="submit" class="btn btn-danger" disabled={busy} data-testid="lost-submit">
          {t('lost.submit')}
        </button>
      </form>
      {asked && (
        <div class="error-box" role="alertdialog" aria-labelledby="lost-ask" data-testid="lost-confirm">
          <p id="lost-ask">{t('lost.ask', { serial: serial.trim(), customer: customer.trim() })}</p>
          <div class="actions">
            <button
              type="button"
              class="btn btn-danger"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  const r = await c.reportLost(serial, customer, code);
                  setCode('');
                  setAsked(false);
                  setReport(r);
                })
              }
              data-testid="lost-confirm-yes"
            >
              {t('lost.submit')}
            </button>
            <button type="button" class="btn" onClick={() => setAsked(false)}>
              {t('common.cancel')}
            </button>
          </div>
        </div>
      )}
      {report && (
        <p class="success-box" role="status" data-testid="lost-done">
          {report.message}
        </p>
      )}
      <ErrorBox error={error} />
    </section>
  );
}
