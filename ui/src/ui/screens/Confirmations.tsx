import { formatAmount, formatTime, groupAccount } from '../../format';
import { activeDevice } from '../../state';
import { DecisionPanel, ErrorBox, Notice, StageLine } from '../common';
import { LookAtDevice } from '../device';
import { useApp, useController, useT } from '../context';

export function ConfirmationsScreen() {
  const t = useT();
  const c = useController();
  const list = useApp((s) => s.confirmations);
  const flow = useApp((s) => s.confirm);
  const lang = useApp((s) => s.lang);
  const dev = useApp(activeDevice);
  const busy = flow.requestId !== null && !flow.result && !flow.error;

  return (
    <>
      <h1 tabIndex={-1}>{t('confirm.title')}</h1>
      <p class="lead">{t('confirm.lead')}</p>
      <div class="actions">
        <button type="button" class="btn" onClick={() => void c.refreshConfirmations()}>
          {t('common.refresh')}
        </button>
      </div>
      <Notice screen="confirmations" />

      {flow.requestId && (
        <section class="approve" aria-labelledby="conf-h">
          <h2 id="conf-h">{t('confirm.onDevice')}</h2>
          {busy && (
            <>
              <LookAtDevice>
                <p>{t('confirm.onDeviceText')}</p>
                <StageLine stage={flow.live.stage} />
              </LookAtDevice>
            </>
          )}
          {flow.result && <DecisionPanel decision={flow.result} what="confirmation" />}
          <ErrorBox error={flow.error} />
          {!busy && (
            <div class="actions">
              <button type="button" class="btn" onClick={() => c.closeConfirmation()} data-testid="confirm-close">
                {t('common.close')}
              </button>
            </div>
          )}
        </section>
      )}

      {list.length === 0 ? (
        <p class="empty">{t('confirm.none')}</p>
      ) : (
        <ul class="cards" aria-label={t('confirm.listLabel')}>
          {list.map((r) => (
            <li class="card" key={r.requestId} data-testid={`request-${r.orderId}`}>
              <div class="card-head">
                <h2 class="card-title">{t('confirm.order', { order: r.orderId })}</h2>
                <span class="amount">{formatAmount(r.amountMinor, r.currency, lang)}</span>
              </div>
              <dl class="facts">
                <dt>{t('payment.payeeName')}</dt>
                <dd>{r.payeeName}</dd>
                <dt>{t('payment.payeeAccount')}</dt>
                <dd>{groupAccount(r.payeeAccount)}</dd>
                <dt>{t('payment.from')}</dt>
                <dd>{groupAccount(r.payerAccount)}</dd>
                <dt>{t('confirm.received')}</dt>
                <dd>{formatTime(r.receivedAt, lang)}</dd>
              </dl>
              <div class="actions">
                <button type="button" class="btn btn-primary" disabled={busy || !dev} onClick={() => void c.approveConfirmation(r.requestId)}>
                  {t('confirm.approve')}
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
