// The customer's own operations on their PIN pad (PROTOCOL.md §6.12, §6.13): change the PIN
// and wipe the PIN pad. Every PIN and the wipe's consent are entered on the PIN pad's keypad;
// this screen says where to look and what happened, in plain words.
import { useState } from 'preact/hooks';
import { toAppError, type AppError } from '../../api/errors';
import type { DeviceProgress, DeviceStatus, PinChangeResult, WipeResult } from '../../api/types';
import type { MessageKey } from '../../i18n';
import { applyProgress, IDLE_LIVE, type LiveSession } from '../../state';
import { DeviceDisplay, ErrorBox } from '../common';
import { useController, useT } from '../context';

/** Plain words for a refusal the PIN pad made itself; others go to the error box. */
function deviceWords(error: AppError, words: { cancelled: MessageKey; timedOut: MessageKey; invalid?: MessageKey }): MessageKey | null {
  switch (error.kind) {
    case 'userCancelled':
      return words.cancelled;
    case 'userTooSlow':
      return words.timedOut;
    case 'invalidInput':
      return words.invalid ?? null;
    default:
      return null;
  }
}

/** One device operation at a time: its live PIN pad screen, its result or its error. */
function useDeviceCall<R>(): {
  busy: boolean;
  live: LiveSession;
  result: R | null;
  error: AppError | null;
  run: (f: (onProgress: (ev: DeviceProgress) => void) => Promise<R>) => Promise<void>;
} {
  const [busy, setBusy] = useState(false);
  const [live, setLive] = useState<LiveSession>(IDLE_LIVE);
  const [result, setResult] = useState<R | null>(null);
  const [error, setError] = useState<AppError | null>(null);
  const run = async (f: (onProgress: (ev: DeviceProgress) => void) => Promise<R>) => {
    setBusy(true);
    setResult(null);
    setError(null);
    setLive(IDLE_LIVE);
    try {
      setResult(await f((ev) => setLive((l) => applyProgress(l, ev))));
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, live, result, error, run };
}

/** The logged-in customer changes their PIN on the PIN pad. */
export function ChangePin() {
  const t = useT();
  const c = useController();
  const call = useDeviceCall<PinChangeResult>();
  const said = call.error && deviceWords(call.error, { cancelled: 'owner.pinCancelled', timedOut: 'owner.pinTimedOut', invalid: 'owner.pinInvalid' });
  return (
    <section class="card" aria-labelledby="pin-h" data-testid="pin-change">
      <h2 id="pin-h" class="card-title">
        {t('owner.pinTitle')}
      </h2>
      <p class="muted small">{t('owner.pinText')}</p>
      <div class="actions">
        <button type="button" class="btn" disabled={call.busy} onClick={() => void call.run((p) => c.pinChange(p))} data-testid="pin-change-start">
          {t('owner.pinStart')}
        </button>
      </div>
      {call.busy && (
        <>
          <p class="stage" role="status" data-testid="pin-change-look">
            {t('owner.pinLook')}
          </p>
          <DeviceDisplay lines={call.live.lines} />
        </>
      )}
      {call.result && (
        <p class={call.result.verdict === 'changed' ? 'success-box' : 'error-box'} role={call.result.verdict === 'changed' ? 'status' : 'alert'} data-testid="pin-change-result">
          {call.result.message}
        </p>
      )}
      {said ? (
        <p class="error-box" role="alert" data-testid="pin-change-refused">
          {t(said)}
        </p>
      ) : (
        <ErrorBox error={call.error} />
      )}
    </section>
  );
}

/** The owner wipes the PIN pad: asked here first (naming it and its customer), then OK on its keypad. */
export function WipePinPad({ device }: { device: DeviceStatus }) {
  const t = useT();
  const c = useController();
  const [asked, setAsked] = useState(false);
  const call = useDeviceCall<WipeResult>();
  const said = call.error && deviceWords(call.error, { cancelled: 'owner.wipeCancelled', timedOut: 'owner.wipeTimedOut' });
  const wipeable = device.connected && (device.lifecycle === 'initialised' || device.lifecycle === 'bound');
  return (
    <section class="card" aria-labelledby="wipe-h" data-testid="wipe-pin-pad">
      <h2 id="wipe-h" class="card-title">
        {t('owner.wipeTitle')}
      </h2>
      <p class="muted small">{t('owner.wipeText')}</p>
      <div class="actions">
        <button type="button" class="btn btn-danger" disabled={call.busy || !wipeable} onClick={() => setAsked(true)} data-testid="wipe-start">
          {t('owner.wipeStart')}
        </button>
      </div>
      {asked && (
        <div class="error-box" role="alertdialog" aria-labelledby="wipe-ask" data-testid="wipe-confirm">
          <p id="wipe-ask">
            {t('owner.wipeAsk', { name: device.name, serial: device.serial, customer: device.customerId ?? t('devices.noCustomer') })}
          </p>
          {call.busy && (
            <>
              <p class="stage" role="status" data-testid="wipe-look">
                {t('owner.wipeLook')}
              </p>
              <DeviceDisplay lines={call.live.lines} />
            </>
          )}
          <div class="actions">
            <button
              type="button"
              class="btn btn-danger"
              disabled={call.busy}
              onClick={() =>
                void call.run(async (p) => {
                  try {
                    return await c.deviceWipe(device.deviceId, p);
                  } finally {
                    setAsked(false);
                  }
                })
              }
              data-testid="wipe-confirm-yes"
            >
              {t('owner.wipeConfirm')}
            </button>
            <button type="button" class="btn" disabled={call.busy} onClick={() => setAsked(false)}>
              {t('common.cancel')}
            </button>
          </div>
        </div>
      )}
      {call.result && (
        <p class={call.result.bankNotified ? 'success-box' : 'error-box'} role="status" data-testid="wipe-result">
          {call.result.message}
        </p>
      )}
      {said ? (
        <p class="error-box" role="alert" data-testid="wipe-refused">
          {t(said)}
        </p>
      ) : (
        <ErrorBox error={call.error} />
      )}
    </section>
  );
}
