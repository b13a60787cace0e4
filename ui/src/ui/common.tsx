// Building blocks shared by the screens.
import type { ComponentChildren } from 'preact';
import type { AppError } from '../api/errors';
import type { DeviceDecision, DeviceStatus, Indicator, Key, Stage } from '../api/types';
import { formatDots, shortHash } from '../format';
import { errorDetail } from '../words';
import { resultTone } from '../state';
import { useApp, useController, useT } from './context';

/** Ends the customer chose or let happen (Cancel on the PIN pad, no key in time): no fault. */
const CUSTOMER_ENDS: ReadonlySet<string> = new Set(['userCancelled', 'userTooSlow']);

export function ErrorBox({ error, onRetry }: { error: AppError | null; onRetry?: () => void }) {
  const t = useT();
  const lang = useApp((s) => s.lang);
  if (!error) return null;
  const detail = errorDetail(lang, error);
  // The customer's own cancel (or a prompt left to time out) is neutral, not a red alarm: the
  // outcome sets the colour, as on the result panel (issue 17: "the customer's own cancel a
  // red error").
  const tone = CUSTOMER_ENDS.has(error.kind) ? 'neutral' : 'danger';
  return (
    <div class="error-box" data-tone={tone} role={tone === 'danger' ? 'alert' : 'status'}>
      <p class="error-title">{t(`error.${error.kind}`)}</p>
      {detail && <p class="error-what">{detail}</p>}
      <p class="error-hint">{t(`error.${error.kind}.hint`)}</p>
      {error.paid !== undefined && (
        <p class="error-paid" data-testid="error-paid" data-paid={String(error.paid)}>
          <strong>{t(error.paid ? 'error.paid.yes' : 'error.paid.no')}</strong>
        </p>
      )}
      {error.message && (
        <details>
          <summary>{t('common.technicalDetails')}</summary>
          <code class="error-detail">{error.message}</code>
        </details>
      )}
      {onRetry && (
        <button type="button" class="btn" onClick={onRetry}>
          {t('common.tryAgain')}
        </button>
      )}
    </div>
  );
}

export function Notice({ screen }: { screen: string }) {
  const t = useT();
  const n = useApp((s) => s.notice);
  if (!n || n.screen !== screen) return null;
  if (n.error) return <ErrorBox error={n.error} />;
  if (n.info)
    return (
      <p class="info-box" role="status">
        {t(n.info, n.infoParams)}
      </p>
    );
  return null;
}

/** The device's own display, mirrored line by line. */
export function DeviceDisplay({ lines, label }: { lines: string[]; label?: string }) {
  const t = useT();
  return (
    <figure class="device-display-wrap">
      <figcaption>{label ?? t('device.display')}</figcaption>
      <div class="device-display" role="status" aria-live="polite" aria-atomic="true" data-testid="device-display">
        {lines.length === 0 ? <span class="muted">{t('device.displayBlank')}</span> : lines.map((l, i) => <div key={i}>{l}</div>)}
      </div>
    </figure>
  );
}

/** PIN entry progress as dots; screen readers hear the count. */
export function PinDots({ pin }: { pin: { entered: number; length: number } | null }) {
  const t = useT();
  if (!pin) return null;
  return (
    <div class="pin-dots-wrap" role="status" aria-live="polite" aria-atomic="true">
      <span class="pin-dots" aria-hidden="true" data-testid="pin-dots">
        {formatDots(pin.entered, pin.length)}
      </span>
      <span class="sr-only">{t('pin.count', { entered: pin.entered, length: pin.length })}</span>
      <p class="muted small">{t('pin.onDevice')}</p>
    </div>
  );
}

export function IndicatorLight({ indicator }: { indicator: Indicator }) {
  const t = useT();
  return (
    <span class={`indicator indicator-${indicator}`}>
      <span class="led" aria-hidden="true" />
      <span>{t(`indicator.${indicator}`)}</span>
    </span>
  );
}

const STAGES: Stage[] = ['contactingBank', 'sendingToDevice', 'waitingForUser', 'sendingToBank', 'verifyingResponse', 'done'];

export function StageLine({ stage }: { stage: Stage | null }) {
  const t = useT();
  if (!stage) return null;
  const idx = STAGES.indexOf(stage);
  return (
    <p class="stage" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" data-done={stage === 'done' ? 'yes' : 'no'} />
      {t(`stage.${stage}`)}
      <span class="sr-only"> ({idx + 1}/{STAGES.length})</span>
    </p>
  );
}

/** The headline's outcome: a blocked PIN and the customer's own no have words of their own. */
function headline(d: DeviceDecision): DeviceDecision['outcome'] | 'blocked' {
  if (d.reason === 'pinBlocked') return 'blocked';
  if (d.reason === 'userRejected') return 'rejected';
  return d.outcome;
}

/**
 * The result as the device decided it, in plain words: the outcome sets the headline and the
 * colour (see resultTone); the device's light is a badge of its own (its integrity, not the
 * outcome). No copy of the device's screen: the device itself shows its outcome.
 */
export function DecisionPanel({ decision, what, children }: { decision: DeviceDecision; what: 'payment' | 'confirmation'; children?: ComponentChildren }) {
  const t = useT();
  const tone = resultTone(decision);
  return (
    <section class={`decision decision-${tone}`} role="alert" aria-live="assertive" data-testid="decision" data-tone={tone}>
      <h2>{t(`outcome.${what}.${headline(decision)}`)}</h2>
      <p>{t(`reason.${decision.reason}`)}</p>
      {children}
      <p class="decision-device muted small">
        {t('decision.deviceLight')} <IndicatorLight indicator={decision.indicator} />
      </p>
    </section>
  );
}

const KEYS: Key[] = ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'clear', '0', 'ok'];
const isFn = (k: Key): k is 'ok' | 'clear' | 'cancel' => k === 'ok' || k === 'clear' || k === 'cancel';

/**
 * The on-screen keypad of a MOCK device. Each press goes straight to the mock device through the
 * backend; nothing here remembers which keys were pressed.
 */
export function Keypad({ device }: { device: DeviceStatus }) {
  const t = useT();
  const c = useController();
  // A real keypad takes no key while no prompt is up: the keys are off until the device shows
  // one, and each press names the prompt it was meant for.
  const prompt = useApp((s) => s.prompts[device.deviceId]) ?? null;
  const disabled = !device.connected || prompt === null;
  const press = (k: Key) => {
    if (prompt !== null) void c.keyPress(device.deviceId, k, prompt);
  };
  return (
    <div class="keypad" role="group" aria-label={t('keypad.label', { name: device.name })}>
      {KEYS.map((k) => (
        <button
          type="button"
          key={k}
          class={`key key-${k}`}
          disabled={disabled}
          onClick={() => press(k)}
          aria-label={isFn(k) ? t(`keypad.${k}`) : undefined}
          data-key={k}
        >
          {isFn(k) ? t(`keypad.${k}.short`) : k}
        </button>
      ))}
      <button type="button" class="key key-cancel" disabled={disabled} onClick={() => press('cancel')} data-key="cancel">
        {t('keypad.cancel')}
      </button>
    </div>
  );
}

/** A mock PIN pad on screen: its display, its light, its keypad. */
export function MockDevicePanel({ device }: { device: DeviceStatus }) {
  const t = useT();
  const lines = useApp((s) => s.displays[device.deviceId]) ?? [];
  return (
    <section class="mock-device" aria-label={t('mock.panel', { name: device.name })} data-testid="mock-device">
      <h2 class="mock-title">{t('mock.title')}</h2>
      <p class="muted small">
        {device.name} · {device.serial}
      </p>
      <div class="mock-body">
        <DeviceDisplay lines={lines} />
        <IndicatorLight indicator={device.indicator} />
        <Keypad device={device} />
      </div>
      {!device.connected && <p class="muted small">{t('mock.notConnected')}</p>}
    </section>
  );
}

export function FirmwareLine({ device }: { device: DeviceStatus }) {
  const t = useT();
  return (
    <span>
      {device.firmware.version} ·{' '}
      <code title={device.firmware.hash} aria-label={t('device.hashFull', { hash: device.firmware.hash })}>
        {shortHash(device.firmware.hash)}
      </code>
    </span>
  );
}

export function Field({
  id,
  label,
  error,
  hint,
  children,
}: {
  id: string;
  label: string;
  error?: string | null;
  hint?: string;
  children: ComponentChildren;
}) {
  return (
    <div class={`field${error ? ' field-invalid' : ''}`}>
      <label for={id}>{label}</label>
      {children}
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={`${id}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

/** aria attributes for an input inside a Field. */
export function fieldAria(id: string, error?: string | null, hint?: boolean) {
  const ids = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return { id, 'aria-invalid': error ? ('true' as const) : undefined, 'aria-describedby': ids || undefined };
}
