// The customer's payments as the bank keeps them (payment_history), newest first, and a receipt
// per payment. Accounts come masked from the core, as a bank statement masks them; amounts are
// written as on every other screen and on the PIN pad.
import { useEffect } from 'preact/hooks';
import type { PaymentRecord } from '../../api/types';
import { formatAmount, formatDateTime } from '../../format';
import type { MessageKey } from '../../i18n';
import { historyTone } from '../../state';
import { ErrorBox } from '../common';
import { useApp, useController, useT } from '../context';

/** "Approved", "Declined: wrong PIN", "Not approved yet", ... */
function outcomeKey(p: PaymentRecord): MessageKey {
  if (p.outcome !== 'declined') return `history.outcome.${p.outcome}`;
  switch (p.reason) {
    case 'wrongPin':
    case 'pinBlocked':
    case 'insufficientFunds':
    case 'userRejected':
      return `history.declined.${p.reason}`;
    default:
      return 'history.outcome.declined';
  }
}

function Outcome({ p }: { p: PaymentRecord }) {
  const t = useT();
  return (
    <span class={`outcome outcome-${historyTone(p)}`} data-tone={historyTone(p)}>
      {t(outcomeKey(p))}
    </span>
  );
}

function Receipt({ p }: { p: PaymentRecord }) {
  const t = useT();
  const c = useController();
  const lang = useApp((s) => s.lang);
  return (
    <section class="receipt card" aria-labelledby="receipt-h" data-testid="receipt">
      <h2 id="receipt-h" tabIndex={-1}>
        {t('history.receiptTitle')}
      </h2>
      <dl class="facts">
        <dt>{t('history.amount')}</dt>
        <dd class="receipt-amount" data-testid="receipt-amount">
          {formatAmount(p.amountMinor, p.currency)}
        </dd>
        <dt>{t('history.outcome')}</dt>
        <dd>
          <Outcome p={p} />
        </dd>
        <dt>{t('history.payee')}</dt>
        <dd>{p.payeeName}</dd>
        <dt>{t('history.payeeAccount')}</dt>
        <dd>
          <code>{p.payeeAccount}</code>
        </dd>
        <dt>{t('history.fromAccount')}</dt>
        <dd>
          <code>{p.fromAccount}</code>
        </dd>
        <dt>{t('history.reference')}</dt>
        <dd>{p.reference || '—'}</dd>
        <dt>{t('history.date')}</dt>
        <dd>{formatDateTime(p.date, lang)}</dd>
        <dt>{t('history.decidedAt')}</dt>
        <dd>{p.decidedAt ? formatDateTime(p.decidedAt, lang) : '—'}</dd>
        <dt>{t('history.journal')}</dt>
        <dd data-testid="receipt-journal">{p.journalReference ? <code>{p.journalReference}</code> : t('history.noJournal')}</dd>
        <dt>{t('history.paymentId')}</dt>
        <dd>
          <code>{p.paymentId}</code>
        </dd>
        <dt>{t('history.origin')}</dt>
        <dd>{t(`history.origin.${p.origin}`)}</dd>
      </dl>
      <div class="actions">
        <button type="button" class="btn" onClick={() => c.closeReceipt()} data-testid="receipt-back">
          {t('history.back')}
        </button>
      </div>
    </section>
  );
}

export function HistoryScreen() {
  const t = useT();
  const c = useController();
  const session = useApp((s) => s.session);
  const h = useApp((s) => s.history);
  const lang = useApp((s) => s.lang);
  // Fresh on every visit: a payment made since shows at the top.
  useEffect(() => {
    if (session) void c.loadHistory();
  }, [session?.sessionId]);

  if (!session) {
    return (
      <>
        <h1 tabIndex={-1}>{t('history.title')}</h1>
        <p class="empty" data-testid="history-login">
          {t('history.needLogin')} <a href="#/login">{t('nav.login')}</a>
        </p>
      </>
    );
  }
  const receipt = h.receiptId ? h.payments.find((p) => p.paymentId === h.receiptId) : undefined;
  return (
    <>
      <h1 tabIndex={-1}>{t('history.title')}</h1>
      {receipt ? (
        <Receipt p={receipt} />
      ) : (
        <>
          <p class="lead">{t('history.lead', { customer: session.customerName })}</p>
          <div class="actions">
            <button type="button" class="btn" disabled={h.loading} onClick={() => void c.loadHistory()}>
              {t('common.refresh')}
            </button>
          </div>
          <ErrorBox error={h.error} onRetry={() => void c.loadHistory()} />
          {h.payments.length === 0 ? (
            <p class="empty" data-testid="history-empty">
              {h.loading ? t('history.loading') : t('history.none')}
            </p>
          ) : (
            <div class="table-wrap" tabIndex={0} aria-label={t('history.tableLabel')}>
              <table class="table history" data-testid="history-table">
                <caption class="sr-only">{t('history.tableLabel')}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t('history.date')}</th>
                    <th scope="col">{t('history.payee')}</th>
                    <th scope="col">{t('history.payeeAccount')}</th>
                    <th scope="col" class="num">
                      {t('history.amount')}
                    </th>
                    <th scope="col">{t('history.outcome')}</th>
                    <th scope="col">
                      <span class="sr-only">{t('history.receipt')}</span>
                    </th>
                    <th scope="col">{t('history.journal')}</th>
                  </tr>
                </thead>
                <tbody>
                  {h.payments.map((p) => (
                    <tr key={p.paymentId} data-testid={`history-row-${p.paymentId}`}>
                      <td>{formatDateTime(p.date, lang)}</td>
                      <td>{p.payeeName}</td>
                      <td>
                        <code>{p.payeeAccount}</code>
                      </td>
                      <td class="num">{formatAmount(p.amountMinor, p.currency)}</td>
                      <td>
                        <Outcome p={p} />
                      </td>
                      <td class="row-actions">
                        <button
                          type="button"
                          class="btn btn-small"
                          onClick={() => c.openReceipt(p.paymentId)}
                          aria-label={t('history.receiptFor', { payee: p.payeeName, amount: formatAmount(p.amountMinor, p.currency) })}
                          data-testid={`receipt-open-${p.paymentId}`}
                        >
                          {t('history.receipt')}
                        </button>
                      </td>
                      <td>{p.journalReference ? <code>{p.journalReference}</code> : '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {h.nextBefore && (
            <div class="actions">
              <button type="button" class="btn" disabled={h.loading} onClick={() => void c.loadHistory(true)} data-testid="history-more">
                {t('history.more')}
              </button>
            </div>
          )}
        </>
      )}
    </>
  );
}
