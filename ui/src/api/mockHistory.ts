// The MockBackend's payment history: what the core's `payment_history` returns (companion::app
// history), built from the mock's own payments. Kept apart from mock.ts, which is long enough.
import { formatAmount, maskAccount } from '../format';
import type { PaymentHistory, PaymentRecord, PaymentRequest, PaymentResult, StaffAction, StaffRole, SerialAction } from './types';

/** Payments per page, as the core asks the bank for. */
export const HISTORY_PAGE = 20;

/** The receipt of a decided mock payment, as the core words the bank's record. */
export function mockRecord(p: Omit<PaymentRequest, 'sessionId'> & { paymentId: string }, r: PaymentResult, now = new Date()): PaymentRecord {
  const outcome = r.outcome === 'approved' ? 'approved' : r.outcome === 'declined' ? 'declined' : 'open';
  return {
    paymentId: p.paymentId,
    date: now.toISOString(),
    decidedAt: outcome === 'open' ? null : now.toISOString(),
    payeeName: p.payeeName,
    payeeAccount: maskAccount(p.payeeAccount),
    fromAccount: maskAccount(p.fromAccount),
    amountMinor: p.amountMinor,
    currency: p.currency,
    amountText: formatAmount(p.amountMinor, p.currency),
    reference: p.reference,
    outcome,
    reason: outcome === 'declined' ? r.reason : 'none',
    journalReference: outcome === 'approved' ? r.bankReference : null,
    origin: 'app',
  };
}

/** One page of `records` (newest first) after the cursor `before` (an index, as text). */
export function pageOf(records: PaymentRecord[], before: string | null): PaymentHistory {
  const start = before === null ? 0 : Number(before);
  const payments = records.slice(start, start + HISTORY_PAGE);
  const next = start + HISTORY_PAGE;
  return { payments, nextBefore: next < records.length ? String(next) : null };
}

/** What the sandbox bank grants each role (companion::app StaffRole::actions). */
export function roleGrants(role: StaffRole): { actions: StaffAction[]; serialActions: SerialAction[] } {
  return role === 'operator'
    ? { actions: ['tamperReset'], serialActions: [] }
    : { actions: ['initialise', 'enrol', 'bind', 'revoke', 'rebind'], serialActions: ['lock', 'unlock', 'unpair', 'revoke'] };
}
