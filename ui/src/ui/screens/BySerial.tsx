// Acting on a PIN pad that is not here, by its serial: staff's revoke / lock / unlock / unpair
// and rebind (its customer moves to a PIN pad here), with each command's answer from the PIN
// pad; and the customer's own loss report. Each asks first, naming the PIN pad and its customer.
import { useState } from 'preact/hooks';
import { toAppError, type AppError } from '../../api/errors';
import type { BankDevice, DeviceCommandRecord, LossReport, SerialAction } from '../../api/types';
import { ErrorBox, Field, fieldAria } from '../common';
import { useApp, useController, useT } from '../context';

type Action = SerialAction | 'rebind';
const ACTIONS: Action[] = ['lock', 'unlock', 'unpair', 'revoke', 'rebind'];

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

/** What the PIN pad answered to one command, as the relaying app reported it. */
function CommandLine({ r }: { r: DeviceCommandRecord }) {
  const t = useT();
  const detail = r.detail ?? '';
  const told =
    r.outcome === 'applied'
      ? t('serial.outcome.applied', { detail })
      : r.outcome === 'not_applied'
        ? t('serial.outcome.not_applied', { detail })
        : r.outcome === 'refused'
          ? t('serial.outcome.refused', { detail })
          : t('serial.outcome.none');
  return (
    <li class={r.outcome === 'applied' ? '' : 'bad'} data-testid={`serial-command-${r.sequence}`}>
      {t('serial.commandLine', { sequence: String(r.sequence), command: r.command, by: r.issuedBy })}: {told}
    </li>
  );
}

/** Staff: a PIN pad that is not plugged in here, by serial. */
export function StaffBySerial() {
  const t = useT();
  const c = useController();
  const devices = useApp((s) => s.devices);
  const staff = useApp((s) => s.staff);
  // Only the actions the bank grants this role (an operator looks PIN pads up only).
  const offered = ACTIONS.filter((a) => (a === 'rebind' ? staff?.actions.includes('rebind') : staff?.serialActions.includes(a)));
  const [serial, setSerial] = useState('');
  const [found, setFound] = useState<BankDevice | null>(null);
  const [asked, setAsked] = useState<Action | null>(null);
  const [done, setDone] = useState<Action | null>(null);
  const [rebindTo, setRebindTo] = useState('');
  // The names as they were when staff confirmed (a rebind changes the record's customer).
  const [doneNames, setDoneNames] = useState({ serial: '', customer: '', to: '' });
  const [busy, error, run] = useCall();
  const customer = found?.customerId ?? t('devices.noCustomer');
  // A replacement: connected here, initialised by the bank, not the PIN pad being replaced.
  const spares = devices.filter((d) => d.connected && d.lifecycle === 'initialised' && d.serial !== found?.serial);
  const to = spares.find((d) => d.deviceId === rebindTo) ?? spares[0] ?? null;
  const toName = to ? `${to.name} (${to.serial})` : '';
  const canRebind = found !== null && found.state === 'bound' && found.customerId !== null;
  const names = { serial: found?.serial ?? '', customer, to: toName };
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
            {offered.map((a) => (
              <button
                key={a}
                type="button"
                class={`btn${a === 'revoke' ? ' btn-danger' : ''}`}
                disabled={busy || found.state === 'revoked' || (a === 'rebind' && !canRebind)}
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
          {found.commands.length > 0 && (
            <>
              <h3 class="small">{t('serial.commands', { serial: found.serial })}</h3>
              <ul class="small" data-testid="serial-commands">
                {found.commands.map((r) => (
                  <CommandLine key={r.sequence} r={r} />
                ))}
              </ul>
              <p class="muted small">{t('serial.outcomeNote')}</p>
            </>
          )}
        </>
      )}
      {found && asked && (
        <div class="error-box" role="alertdialog" aria-labelledby="serial-ask" data-testid="serial-confirm">
          {asked === 'rebind' && (
            <Field id="rebind-to" label={t('serial.rebindTo')}>
              <select {...fieldAria('rebind-to')} value={to?.deviceId ?? ''} onChange={(e) => setRebindTo((e.target as HTMLSelectElement).value)}>
                {spares.map((d) => (
                  <option key={d.deviceId} value={d.deviceId}>
                    {d.name} ({d.serial})
                  </option>
                ))}
              </select>
            </Field>
          )}
          {asked === 'rebind' && !to ? (
            <p id="serial-ask">{t('serial.rebindNone')}</p>
          ) : (
            <p id="serial-ask">{t(`serial.ask.${asked}`, names)}</p>
          )}
          {asked === 'rebind' && busy && (
            <p class="stage" role="status" data-testid="serial-rebind-look">
              {t('serial.rebindLook', names)}
            </p>
          )}
          <div class="actions">
            <button
              type="button"
              class="btn btn-danger"
              disabled={busy || (asked === 'rebind' && !to)}
              onClick={() =>
                void run(async () => {
                  const confirmed = names;
                  if (asked === 'rebind') {
                    if (!to) return;
                    await c.staffRebindBySerial(found.serial, to.deviceId, () => undefined);
                    setFound(await c.staffDeviceLookup(found.serial));
                  } else {
                    setFound(await c.staffBySerial(found.serial, asked));
                  }
                  setDoneNames(confirmed);
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
          {t(`serial.done.${done}`, doneNames)}
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
