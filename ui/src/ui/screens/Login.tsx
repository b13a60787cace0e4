import { activeDevice } from '../../state';
import { ErrorBox, Field, fieldAria, StageLine } from '../common';
import { LookAtDevice } from '../device';
import { useApp, useController, useT } from '../context';
import { ChangePin } from './Owner';

export function LoginScreen() {
  const t = useT();
  const c = useController();
  const login = useApp((s) => s.login);
  const session = useApp((s) => s.session);
  const dev = useApp(activeDevice);
  const loggedOut = useApp((s) => s.loggedOut);
  const told = useApp((s) => (dev ? s.bankCommands[dev.deviceId] : undefined));

  if (session) {
    return (
      <>
        <h1 tabIndex={-1}>{t('login.title')}</h1>
        <section class="success-box" role="status" data-testid="login-done">
          <h2>{t('login.welcome', { name: session.customerName })}</h2>
          <p>{t('login.sessionText', { customer: session.customerId })}</p>
          <div class="actions">
            <a class="btn btn-primary" href="#/payment">
              {t('login.toPayment')}
            </a>
            <button type="button" class="btn" onClick={() => void c.logout()}>
              {t('login.logout')}
            </button>
          </div>
        </section>
        <ChangePin />
      </>
    );
  }

  return (
    <>
      <h1 tabIndex={-1}>{t('login.title')}</h1>
      <p class="lead">{t('login.lead')}</p>
      {told && (
        <p class={`link-state ${told.applied && told.command === 'unlock' ? '' : 'bad'}`} role="alert" data-testid="login-bank-command">
          <strong>{t(`bankCommand.${told.command}`)}</strong> {told.message}
        </p>
      )}
      {loggedOut && (
        <p
          class={`link-state ${loggedOut.bankEnded && loggedOut.deviceCleared ? '' : 'bad'}`}
          role="status"
          data-testid="logged-out"
        >
          <strong>{t('login.loggedOut')}</strong> {loggedOut.message}
        </p>
      )}
      {login.step === 'form' && (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            void c.login();
          }}
        >
          <Field id="login-customer" label={t('login.customer')} hint={t('login.customerHint')}>
            <input
              {...fieldAria('login-customer', null, true)}
              name="customer"
              autocomplete="username"
              value={login.customerId}
              onInput={(e) => c.setLoginCustomer((e.target as HTMLInputElement).value)}
              required
            />
          </Field>
          <p>{dev ? t('login.withDevice', { name: dev.name, serial: dev.serial }) : t('login.noDevice')}</p>
          <ErrorBox error={login.error} />
          <div class="actions">
            <button type="submit" class="btn btn-primary" disabled={!dev} data-testid="login-submit">
              {t('login.submit')}
            </button>
          </div>
        </form>
      )}
      {login.step === 'device' && (
        <section aria-labelledby="login-dev-h">
          <h2 id="login-dev-h">{t('login.working')}</h2>
          <LookAtDevice>
            <StageLine stage={login.live.stage} />
          </LookAtDevice>
        </section>
      )}
    </>
  );
}
