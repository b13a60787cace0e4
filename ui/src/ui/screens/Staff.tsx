import { useEffect, useRef, useState } from 'preact/hooks';
import type { StaffAction } from '../../api/types';
import { DeviceDisplay, ErrorBox, Field, fieldAria, IndicatorLight, PinDots, StageLine } from '../common';
import { activeDevice } from '../../state';
import { useApp, useController, useT } from '../context';
import { StaffBySerial } from './BySerial';

function SignIn() {
  const t = useT();
  const c = useController();
  const flow = useApp((s) => s.staffFlow);
  const [id, setId] = useState('');
  const [pw, setPw] = useState('');
  return (
    <form
      class="form narrow"
      onSubmit={(e) => {
        e.preventDefault();
        void c.staffSignIn(id, pw).then(() => setPw(''));
      }}
    >
      <p class="lead">{t('staff.signInLead')}</p>
      <Field id="staff-id" label={t('staff.id')}>
        <input {...fieldAria('staff-id')} autocomplete="username" value={id} onInput={(e) => setId((e.target as HTMLInputElement).value)} required />
      </Field>
      <Field id="staff-pw" label={t('staff.password')}>
        <input {...fieldAria('staff-pw')} type="password" autocomplete="current-password" value={pw} onInput={(e) => setPw((e.target as HTMLInputElement).value)} required />
      </Field>
      <ErrorBox error={flow.error} />
      <div class="actions">
        <button type="submit" class="btn btn-primary" disabled={flow.busy === 'signIn'} data-testid="staff-signin">
          {t('staff.signIn')}
        </button>
      </div>
    </form>
  );
}

export function StaffScreen() {
  const t = useT();
  const c = useController();
  const staff = useApp((s) => s.staff);
  const devices = useApp((s) => s.devices);
  const flow = useApp((s) => s.staffFlow);
  // Until staff pick one, act on the device the rest of the app is using (the header's device).
  const active = useApp(activeDevice);
  const [customer, setCustomer] = useState('');
  const [target, setTarget] = useState('');
  // The action waiting for staff's yes, which names the PIN pad and its customer. Nothing stays
  // armed: another PIN pad, an answer or a cancel clears it, so every revoke asks again.
  const [asked, setAsked] = useState<'revoke' | 'rebind' | 'tamperReset' | null>(null);
  const output = useRef<HTMLElement>(null);
  const devId = devices.find((d) => d.deviceId === flow.deviceId)?.deviceId ?? active?.deviceId ?? devices[0]?.deviceId;
  useEffect(() => {
    setAsked(null);
    setTarget('');
  }, [devId]);
  // What an action did is put in view, wherever staff scrolled to press it.
  useEffect(() => {
    if (flow.result || flow.error || (flow.busy && flow.busy !== 'signIn')) output.current?.scrollIntoView?.({ block: 'nearest' });
  }, [flow.result, flow.error, flow.busy]);

  if (!staff) {
    return (
      <>
        <h1 tabIndex={-1}>{t('staff.title')}</h1>
        <SignIn />
      </>
    );
  }

  const dev = devices.find((d) => d.deviceId === flow.deviceId) ?? active ?? devices[0];
  const busy = flow.busy !== null;
  const act = (action: Parameters<typeof c.staffAction>[0], extra: { customerId?: string; toDeviceId?: string } = {}) => {
    if (dev) void c.staffAction(action, { deviceId: dev.deviceId, ...extra });
  };
  const others = devices.filter((d) => d.deviceId !== dev?.deviceId);
  // Only what the bank lets this role do is offered (the core says which, from the role).
  const may = (a: StaffAction) => staff.actions.includes(a);
  const toDev = others.find((d) => d.deviceId === target);
  const names = {
    serial: dev?.serial ?? '',
    name: dev?.name ?? '',
    customer: dev?.customerId ?? t('devices.noCustomer'),
    to: toDev ? `${toDev.name} (${toDev.serial})` : '',
  };
  const confirm = () => {
    const a = asked;
    setAsked(null);
    if (a === 'rebind') act('rebind', { toDeviceId: target });
    else if (a) act(a);
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('staff.title')}</h1>
      <div class="staff-bar">
        <p>
          {t('staff.signedInAs', { name: staff.displayName, id: staff.staffId })} ·{' '}
          <span class="tag">{t(`staff.role.${staff.role}`)}</span>
        </p>
        <button type="button" class="btn" onClick={() => void c.staffSignOut()}>
          {t('staff.signOut')}
        </button>
      </div>

      <div class="field">
        <label for="staff-device">{t('staff.device')}</label>
        <select id="staff-device" value={dev?.deviceId ?? ''} onChange={(e) => c.staffSelectDevice((e.target as HTMLSelectElement).value)} data-testid="staff-device">
          {devices.map((d) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.name} ({d.serial})
            </option>
          ))}
        </select>
      </div>
      {dev && (
        <p class="device-summary" data-testid="staff-device-state">
          <IndicatorLight indicator={dev.indicator} /> {t(`lifecycle.${dev.lifecycle}`)} · {t(`tamper.${dev.tamper}`)} ·{' '}
          {dev.connected ? t('devices.connected') : t('devices.notConnected')}
          {dev.customerId && <> · {dev.customerId}</>}
        </p>
      )}

      <section class="staff-output" ref={output} aria-live="polite" aria-label={t('staff.output')} data-testid="staff-output">
        {flow.busy && flow.busy !== 'signIn' && (
          <>
            <StageLine stage={flow.live.stage} />
            {flow.live.lines.length > 0 && <DeviceDisplay lines={flow.live.lines} />}
            <PinDots pin={flow.live.pin} />
          </>
        )}
        {flow.result && (
          <div class="success-box" role="status" data-testid="staff-result">
            <h2>{t(`staff.done.${flow.result.action}`)}</h2>
            <p>{flow.result.detail}</p>
          </div>
        )}
        <ErrorBox error={flow.error} />
      </section>
      {asked && dev && (
        <div class="error-box" role="alertdialog" aria-labelledby="staff-ask" data-testid="staff-confirm">
          <p id="staff-ask">{t(`staff.ask.${asked}`, names)}</p>
          <div class="actions">
            <button type="button" class="btn btn-danger" disabled={busy} onClick={confirm} data-testid="staff-confirm-yes">
              {t(`staff.${asked}`)}
            </button>
            <button type="button" class="btn" onClick={() => setAsked(null)} data-testid="staff-confirm-no">
              {t('common.cancel')}
            </button>
          </div>
        </div>
      )}
      <div class="staff-grid">
        {may('initialise') && (
        <section class="card" aria-labelledby="s-init">
          <h2 id="s-init" class="card-title">
            {t('staff.initialise')}
          </h2>
          <p class="muted small">{t('staff.initialiseText')}</p>
          <button type="button" class="btn" disabled={busy || !dev || dev.lifecycle !== 'manufactured' || dev.tamper === 'tampered'} onClick={() => act('initialise')} data-testid="staff-initialise">
            {t('staff.initialise')}
          </button>
        </section>
        )}

        {(may('enrol') || may('bind')) && (
        <section class="card" aria-labelledby="s-cust">
          <h2 id="s-cust" class="card-title">
            {t('staff.enrolBind')}
          </h2>
          <Field id="staff-customer" label={t('staff.customer')}>
            <input {...fieldAria('staff-customer')} value={customer} onInput={(e) => setCustomer((e.target as HTMLInputElement).value)} />
          </Field>
          <p class="muted small">{t('staff.enrolText')}</p>
          <div class="actions">
            <button type="button" class="btn" disabled={busy || !dev || !customer.trim() || dev.lifecycle === 'manufactured' || dev.lifecycle === 'revoked'} onClick={() => act('enrol', { customerId: customer })}>
              {t('staff.enrol')}
            </button>
            <button type="button" class="btn" disabled={busy || !dev || !customer.trim() || dev.lifecycle !== 'initialised'} onClick={() => act('bind', { customerId: customer })}>
              {t('staff.bind')}
            </button>
          </div>
        </section>
        )}

        {may('enrol') && (
        <section class="card" aria-labelledby="s-pair">
          <h2 id="s-pair" class="card-title">
            {t('staff.pair')}
          </h2>
          <p class="muted small">{t('staff.pairText')}</p>
          <a class="btn" href="#/pairing" onClick={() => dev && c.useDevice(dev.deviceId)}>
            {t('staff.openPairing')}
          </a>
        </section>
        )}

        {(may('revoke') || may('rebind')) && (
        <section class="card" aria-labelledby="s-revoke">
          <h2 id="s-revoke" class="card-title">
            {t('staff.revokeRebind')}
          </h2>
          <p class="muted small">{t('staff.revokeSure')}</p>
          <div class="actions">
            <button
              type="button"
              class="btn btn-danger"
              disabled={busy || !dev || dev.lifecycle === 'revoked' || !may('revoke')}
              onClick={() => setAsked('revoke')}
              data-testid="staff-revoke"
            >
              {t('staff.revoke')}
            </button>
          </div>
          <div class="field">
            <label for="staff-target">{t('staff.rebindTo')}</label>
            <select id="staff-target" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
              <option value="">{t('staff.chooseDevice')}</option>
              {others.map((d) => (
                <option key={d.deviceId} value={d.deviceId}>
                  {d.name} ({d.serial})
                </option>
              ))}
            </select>
          </div>
          <button type="button" class="btn" disabled={busy || !dev || !target || !may('rebind')} onClick={() => setAsked('rebind')} data-testid="staff-rebind">
            {t('staff.rebind')}
          </button>
        </section>
        )}

        {may('tamperReset') && (
        <section class="card" aria-labelledby="s-tamper">
          <h2 id="s-tamper" class="card-title">
            {t('staff.tamperReset')}
          </h2>
          <p class="muted small">{t('staff.tamperText')}</p>
          <button
            type="button"
            class="btn btn-danger"
            disabled={busy || !dev || dev.tamper !== 'tampered'}
            onClick={() => setAsked('tamperReset')}
            data-testid="staff-tamper-reset"
          >
            {t('staff.tamperReset')}
          </button>
        </section>
        )}

        <StaffBySerial />
      </div>
      {!may('tamperReset') && <p class="muted small" data-testid="staff-not-offered">{t('staff.operatorOnly')}</p>}
      {!may('initialise') && <p class="muted small">{t('staff.clerkOnly')}</p>}

    </>
  );
}
