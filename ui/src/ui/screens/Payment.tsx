import { isRetryable } from '../../api/errors';
import { formatAmount, groupAccount, parseAmount } from '../../format';
import type { PaymentField } from '../../state';
import { DecisionPanel, ErrorBox, Field, fieldAria, PinDots, StageLine } from '../common';
import { LookAtDevice } from '../device';
import { BLOCK_FIX, paymentBlock } from '../../safety';
import { useApp, useController, useT } from '../context';

const CURRENCIES = ['CNY', 'USD', 'EUR', 'HKD'];

function Review({ p }: { p: { fromAccount: string; payeeName: string; payeeAccount: string; amountMinor: string; currency: string; reference: string } }) {
  const t = useT();
  const lang = useApp((s) => s.lang);
  return (
    <dl class="facts review" data-testid="payment-review">
      <dt>{t('payment.from')}</dt>
      <dd>{groupAccount(p.fromAccount)}</dd>
      <dt>{t('payment.payeeName')}</dt>
      <dd>{p.payeeName}</dd>
      <dt>{t('payment.payeeAccount')}</dt>
      <dd>{groupAccount(p.payeeAccount)}</dd>
      <dt>{t('payment.amount')}</dt>
      <dd class="amount">{formatAmount(p.amountMinor, p.currency, lang)}</dd>
      <dt>{t('payment.reference')}</dt>
      <dd>{p.reference || '—'}</dd>
    </dl>
  );
}

export function PaymentScreen() {
  const t = useT();
  const c = useController();
  const pay = useApp((s) => s.payment);
  const session = useApp((s) => s.session);
  const lang = useApp((s) => s.lang);
  // The reason only (a string): the screen re-renders when it changes, not on every event.
  const blocked = useApp((s) => paymentBlock(s)?.reason ?? null);
  const block = blocked ? { reason: blocked, fix: BLOCK_FIX[blocked] } : null;

  const steps = ['form', 'review', 'device', 'result'] as const;
  const header = (
    <>
      <h1 tabIndex={-1}>{t('payment.title')}</h1>
      <ol class="steps" aria-label={t('common.steps')}>
        {steps.map((s) => (
          <li key={s} aria-current={pay.step === s ? 'step' : undefined}>
            {t(`payment.step.${s}`)}
          </li>
        ))}
      </ol>
    </>
  );

  if (block && pay.step === 'form') {
    // Closed before anything reaches the bank, with the action that fixes it.
    const danger = block.reason === 'tampered' || block.reason === 'revoked';
    return (
      <>
        {header}
        <div class={`callout payment-blocked${danger ? ' callout-danger' : ''}`} role="alert" data-testid="payment-blocked" data-reason={block.reason}>
          <p>{t(`payment.blocked.${block.reason}`)}</p>
          {block.fix && (
            <p>
              <a class="btn btn-primary" href={`#/${block.fix}`} data-testid="payment-blocked-fix">
                {t(`payment.blocked.fix.${block.fix}`)}
              </a>
            </p>
          )}
        </div>
        <ErrorBox error={pay.error} />
      </>
    );
  }

  if (pay.step === 'form') {
    const f = pay.form;
    const err = (k: PaymentField) => (pay.errors[k] ? t(pay.errors[k]!) : null);
    const preview = parseAmount(f.amount, f.currency);
    return (
      <>
        {header}
        <form
          class="form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void c.reviewPayment();
          }}
        >
          <Field id="pay-from" label={t('payment.from')} error={err('fromAccount')}>
            <select {...fieldAria('pay-from', err('fromAccount'))} value={f.fromAccount} onChange={(e) => c.editPayment({ fromAccount: (e.target as HTMLSelectElement).value })}>
              {(session?.accounts ?? []).map((a) => (
                <option key={a} value={a}>
                  {groupAccount(a)}
                </option>
              ))}
            </select>
          </Field>
          <Field id="pay-payee" label={t('payment.payeeName')} error={err('payeeName')}>
            <input {...fieldAria('pay-payee', err('payeeName'))} value={f.payeeName} autocomplete="off" onInput={(e) => c.editPayment({ payeeName: (e.target as HTMLInputElement).value })} />
          </Field>
          <Field id="pay-account" label={t('payment.payeeAccount')} error={err('payeeAccount')} hint={t('payment.payeeAccountHint')}>
            <input
              {...fieldAria('pay-account', err('payeeAccount'), true)}
              value={f.payeeAccount}
              inputMode="numeric"
              autocomplete="off"
              onInput={(e) => c.editPayment({ payeeAccount: (e.target as HTMLInputElement).value })}
            />
          </Field>
          <div class="row">
            <Field id="pay-amount" label={t('payment.amount')} error={err('amount')} hint={preview ? formatAmount(preview, f.currency, lang) : t('payment.amountHint')}>
              <input
                {...fieldAria('pay-amount', err('amount'), true)}
                value={f.amount}
                inputMode="decimal"
                autocomplete="off"
                onInput={(e) => c.editPayment({ amount: (e.target as HTMLInputElement).value })}
              />
            </Field>
            <Field id="pay-currency" label={t('payment.currency')}>
              <select id="pay-currency" value={f.currency} onChange={(e) => c.editPayment({ currency: (e.target as HTMLSelectElement).value })}>
                {CURRENCIES.map((cur) => (
                  <option key={cur} value={cur}>
                    {cur}
                  </option>
                ))}
              </select>
            </Field>
          </div>
          <Field id="pay-ref" label={t('payment.reference')} error={err('reference')}>
            <input {...fieldAria('pay-ref', err('reference'))} value={f.reference} maxLength={35} onInput={(e) => c.editPayment({ reference: (e.target as HTMLInputElement).value })} />
          </Field>
          <ErrorBox error={pay.error} />
          <div class="actions">
            <button type="submit" class="btn btn-primary" disabled={pay.busy} data-testid="payment-review-btn">
              {t('payment.toReview')}
            </button>
          </div>
        </form>
      </>
    );
  }

  if (pay.step === 'review') {
    return (
      <>
        {header}
        <p class="lead">{t('payment.reviewLead')}</p>
        <Review p={pay.prepared} />
        <div class="callout">{t('payment.reviewWarn')}</div>
        <ErrorBox error={pay.error} />
        <div class="actions">
          <button type="button" class="btn" onClick={() => c.backToForm()}>
            {t('common.back')}
          </button>
          <button type="button" class="btn btn-primary" onClick={() => void c.approvePayment()} data-testid="payment-send">
            {t('payment.send')}
          </button>
        </div>
      </>
    );
  }

  if (pay.step === 'device') {
    return (
      <>
        {header}
        <section class="approve" aria-labelledby="approve-h">
          <h2 id="approve-h">{t('payment.approveOnDevice')}</h2>
          <LookAtDevice>
            <p>{t('payment.approveText')}</p>
            <p class="muted small">
              {t('payment.summary', { amount: formatAmount(pay.prepared.amountMinor, pay.prepared.currency, lang), payee: pay.prepared.payeeName })}
            </p>
            <PinDots pin={pay.live.pin} />
            <StageLine stage={pay.live.stage} />
          </LookAtDevice>
          <div class="actions">
            <button type="button" class="btn" onClick={() => void c.cancelPayment()}>
              {t('common.cancel')}
            </button>
          </div>
        </section>
      </>
    );
  }

  // result
  return (
    <>
      {header}
      {pay.result ? (
        <DecisionPanel decision={pay.result} what="payment">
          {pay.result.bankReference && <p>{t('payment.bankRef', { ref: pay.result.bankReference })}</p>}
          {pay.result.pinTriesLeft != null && (
            <p data-testid="tries-left">
              <strong>{pay.result.pinTriesLeft === 1 ? t('payment.triesLeftOne') : t('payment.triesLeft', { n: pay.result.pinTriesLeft })}</strong>
            </p>
          )}
        </DecisionPanel>
      ) : (
        <ErrorBox error={pay.error} />
      )}
      <Review p={pay.prepared} />
      <div class="actions">
        <button type="button" class="btn btn-primary" onClick={() => c.newPayment()} data-testid="payment-new">
          {t('payment.new')}
        </button>
        {pay.result?.outcome !== 'approved' && pay.result?.reason !== 'pinBlocked' && pay.result?.reason !== 'tampered' && (
          <button type="button" class="btn" onClick={() => c.retryPayment()} data-testid="payment-retry">
            {t('payment.retrySame')}
          </button>
        )}
        {pay.error && isRetryable(pay.error) && pay.error.paid === undefined && <p class="muted small">{t('payment.retryHint')}</p>}
      </div>
    </>
  );
}
