// The guided first run, on the model of Trezor Suite's onboarding and Ledger Live's "Get
// started": connect -> pair -> log in as one flow, each step with the PIN pad drawing and, while
// the PIN pad has the customer's attention, "look at your PIN pad". Shown once, while nothing is
// paired; skippable. Each step runs the same controller action as its own screen.
import { formatCode } from '../../format';
import { activeDevice } from '../../state';
import { ErrorBox, Field, fieldAria, StageLine } from '../common';
import { LookAtDevice, PinPadIllustration } from '../device';
import { useApp, useController, useT } from '../context';

export type FirstRunStep = 'connect' | 'pair' | 'login' | 'done';
const STEPS: FirstRunStep[] = ['connect', 'pair', 'login', 'done'];

export function FirstRun() {
  const t = useT();
  const c = useController();
  const devices = useApp((s) => s.devices);
  const dev = useApp(activeDevice);
  const pairing = useApp((s) => s.pairing);
  const login = useApp((s) => s.login);
  const session = useApp((s) => s.session);
  const notice = useApp((s) => (s.notice?.screen === 'devices' ? s.notice.error : null));

  const step: FirstRunStep = session
    ? 'done'
    : dev?.connected && (dev.paired || pairing.step === 'done')
      ? 'login'
      : dev?.connected
        ? 'pair'
        : 'connect';

  return (
    <section class="first-run" data-testid="first-run" data-step={step}>
      <h1 tabIndex={-1}>{t('firstRun.title')}</h1>
      <ol class="steps" aria-label={t('common.steps')}>
        {STEPS.map((s) => (
          <li key={s} aria-current={s === step ? 'step' : undefined}>
            {t(`firstRun.step.${s}`)}
          </li>
        ))}
      </ol>

      {step === 'connect' && (
        <div class="first-run-step">
          <PinPadIllustration />
          <div>
            <h2>{t('firstRun.connect.title')}</h2>
            <p>{t('firstRun.connect.text')}</p>
            {devices.length === 0 ? (
              <p class="empty" role="status">
                {t('firstRun.connect.waiting')}
              </p>
            ) : (
              <ul class="plain-list">
                {devices.map((d) => (
                  <li key={d.deviceId}>
                    <button type="button" class="btn btn-primary" onClick={() => void c.connect(d.deviceId)} data-testid={`first-run-connect-${d.serial || d.deviceId}`}>
                      {t('firstRun.connect.button', { name: d.name })}
                    </button>
                  </li>
                ))}
              </ul>
            )}
            <ErrorBox error={notice} />
          </div>
        </div>
      )}

      {step === 'pair' && dev && (
        <div>
          <h2>{t('firstRun.pair.title')}</h2>
          {pairing.step === 'compare' ? (
            <>
              <div class="side-by-side">
                <div class="panel code-panel">
                  <p class="panel-label">{t('pairing.codeHere')}</p>
                  <p class="pair-code" data-testid="first-run-code" aria-label={t('pairing.codeSpoken', { digits: pairing.code.split('').join(' ') })}>
                    {formatCode(pairing.code)}
                  </p>
                </div>
                <LookAtDevice title={t('pairing.checkDevice')}>
                  <p>{t('pairing.ifSame')}</p>
                </LookAtDevice>
              </div>
              <p>
                <strong>{t('pairing.ifDifferent')}</strong>
              </p>
              <StageLine stage={pairing.live.stage} />
            </>
          ) : (
            <div class="first-run-step">
              <PinPadIllustration />
              <div>
                <p>{t('firstRun.pair.text', { name: dev.name, serial: dev.serial })}</p>
                <ErrorBox error={pairing.step === 'start' ? pairing.error : null} />
                <div class="actions">
                  <button
                    type="button"
                    class="btn btn-primary"
                    disabled={pairing.step === 'start' && pairing.busy}
                    onClick={() => void c.pair()}
                    data-testid="first-run-pair"
                  >
                    {t('pairing.start')}
                  </button>
                </div>
              </div>
            </div>
          )}
        </div>
      )}

      {step === 'login' && (
        <div>
          <h2>{t('firstRun.login.title')}</h2>
          {login.step === 'device' ? (
            <LookAtDevice>
              <StageLine stage={login.live.stage} />
            </LookAtDevice>
          ) : (
            <form
              class="form"
              onSubmit={(e) => {
                e.preventDefault();
                void c.login();
              }}
            >
              <p>{t('firstRun.login.text')}</p>
              <Field id="first-run-customer" label={t('login.customer')} hint={t('login.customerHint')}>
                <input
                  {...fieldAria('first-run-customer', null, true)}
                  autocomplete="username"
                  value={login.step === 'form' ? login.customerId : ''}
                  onInput={(e) => c.setLoginCustomer((e.target as HTMLInputElement).value)}
                  required
                />
              </Field>
              <ErrorBox error={login.step === 'form' ? login.error : null} />
              <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="first-run-login">
                  {t('login.submit')}
                </button>
              </div>
            </form>
          )}
        </div>
      )}

      {step === 'done' && session && (
        <div class="success-box" role="status" data-testid="first-run-done">
          <h2>{t('firstRun.done.title', { name: session.customerName })}</h2>
          <p>{t('firstRun.done.text')}</p>
          <div class="actions">
            <a class="btn btn-primary" href="#/payment" onClick={() => void c.finishFirstRun()} data-testid="first-run-finish">
              {t('login.toPayment')}
            </a>
            <a class="btn" href="#/history" onClick={() => void c.finishFirstRun()}>
              {t('firstRun.done.history')}
            </a>
          </div>
        </div>
      )}

      {step !== 'done' && (
        <p class="first-run-skip">
          <button type="button" class="btn" onClick={() => void c.finishFirstRun()} data-testid="first-run-skip">
            {t('firstRun.skip')}
          </button>{' '}
          <span class="muted small">{t('firstRun.skipText')}</span>
        </p>
      )}
    </section>
  );
}
