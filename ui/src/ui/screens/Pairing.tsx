import { formatCode } from '../../format';
import { activeDevice } from '../../state';
import { ErrorBox, StageLine } from '../common';
import { LookAtDevice } from '../device';
import { useApp, useController, useT } from '../context';

export function PairingScreen() {
  const t = useT();
  const c = useController();
  const p = useApp((s) => s.pairing);
  const dev = useApp(activeDevice);
  return (
    <>
      <h1 tabIndex={-1}>{t('pairing.title')}</h1>
      <ol class="steps" aria-label={t('common.steps')}>
        <li aria-current={p.step === 'start' ? 'step' : undefined}>{t('pairing.step1')}</li>
        <li aria-current={p.step === 'compare' ? 'step' : undefined}>{t('pairing.step2')}</li>
        <li aria-current={p.step === 'done' ? 'step' : undefined}>{t('pairing.step3')}</li>
      </ol>

      {p.step === 'start' && (
        <section>
          <p class="lead">{t('pairing.lead')}</p>
          {dev ? (
            <p>
              {t('pairing.withDevice', { name: dev.name, serial: dev.serial })}
              {dev.paired && <span class="tag">{t('pairing.alreadyPaired')}</span>}
            </p>
          ) : (
            <p class="empty">
              {t('pairing.noDevice')} <a href="#/devices">{t('nav.devices')}</a>
            </p>
          )}
          <ErrorBox error={p.error} />
          <div class="actions">
            <button type="button" class="btn btn-primary" disabled={!dev || p.busy} onClick={() => void c.pair()} data-testid="pairing-start">
              {p.error ? t('common.tryAgain') : t('pairing.start')}
            </button>
          </div>
        </section>
      )}

      {p.step === 'compare' && (
        <section aria-labelledby="compare-h">
          <h2 id="compare-h" class="sr-only">
            {t('pairing.step2')}
          </h2>
          <div class="side-by-side">
            <div class="panel code-panel">
              <p class="panel-label">{t('pairing.codeHere')}</p>
              <p class="pair-code" data-testid="pairing-code" aria-label={t('pairing.codeSpoken', { digits: p.code.split('').join(' ') })}>
                {formatCode(p.code)}
              </p>
            </div>
            <LookAtDevice title={t('pairing.checkDevice')} />
          </div>
          <div class="callout">
            <p>{t('pairing.ifSame')}</p>
            <p>
              <strong>{t('pairing.ifDifferent')}</strong>
            </p>
          </div>
          <StageLine stage={p.live.stage} />
          <div class="actions">
            <button type="button" class="btn" onClick={() => void c.cancelPairing()}>
              {t('pairing.cancel')}
            </button>
          </div>
        </section>
      )}

      {p.step === 'done' && (
        <section class="success-box" role="status" aria-live="polite" data-testid="pairing-done">
          <h2>{t('pairing.done')}</h2>
          <p>{t('pairing.doneText', { name: p.device.name })}</p>
          <div class="actions">
            <a class="btn btn-primary" href="#/login">
              {t('pairing.next')}
            </a>
            <button type="button" class="btn" onClick={() => c.resetPairing()}>
              {t('pairing.again')}
            </button>
          </div>
        </section>
      )}
    </>
  );
}
