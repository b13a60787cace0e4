// Error details and log lines a customer reads are worded from typed data in the app's
// language, not passed through as the backend's English (issue 17 item 7).
import { describe, expect, it } from 'vitest';
import { toAppError } from '../src/api/errors';
import type { LogEntry } from '../src/api/types';
import { errorDetail, logLine } from '../src/words';

const han = /[\u4e00-\u9fff]/;

function entry(message: string, event?: LogEntry['event']): LogEntry {
  return { seq: 1, time: '2026-12-05T03:00:00Z', level: 'info', source: 'app', message, event };
}

describe('error details', () => {
  it('word the typed code in zh-CN and en, whatever English the backend sent', () => {
    const error = toAppError({ kind: 'invalidInput', code: 'device.PinPolicy', message: 'the PIN pad refused Enrol: PinPolicy' });
    expect(error.code).toBe('device.PinPolicy');
    expect(errorDetail('zh-CN', error)).toBe('密码长度不符合要求。');
    expect(errorDetail('en', error)).toBe('The PIN’s length is not allowed.');
    const blocked = toAppError({ kind: 'bankRejected', code: 'bank.pin_locked', message: 'too many wrong PINs' });
    expect(errorDetail('zh-CN', blocked)).toMatch(han);
    const amount = toAppError({ kind: 'invalidInput', code: 'input.invalid_amount', message: '12,34: type 12.34' });
    expect(errorDetail('zh-CN', amount)).toBe('金额无效。');
  });

  it('say nothing for an error without a code or with one the app does not know', () => {
    expect(errorDetail('zh-CN', toAppError({ kind: 'internal', message: 'x' }))).toBeNull();
    expect(errorDetail('zh-CN', toAppError({ kind: 'internal', code: 'device.Nonsense', message: 'x' }))).toBeNull();
    expect(toAppError({ kind: 'internal', code: 7, message: 'x' }).code).toBeUndefined();
  });
});

describe('log lines', () => {
  it('word a typed flow event in zh-CN', () => {
    const step = entry('  - bank: preparing the payment', { type: 'step', step: 'preparePayment' });
    expect(logLine('zh-CN', step)).toBe('银行：正在准备付款');
    expect(logLine('en', step)).toBe('Bank: preparing the payment');
    const shown = entry('the PIN pad shows: pay 12.34 EUR to Shop SARL (FR76...)', {
      type: 'paymentShown',
      transactionId: 'TX-1',
      payeeName: 'Shop SARL',
      payeeAccount: 'FR7630006000011234567890189',
      amount: '12.34',
      currency: 'EUR',
    });
    expect(logLine('zh-CN', shown)).toBe('密码键盘显示：向 Shop SARL（FR7630006000011234567890189）支付 12.34 EUR');
    const pin = entry('PIN ●●○○', { type: 'pinEntry', entered: 2, max: 6, dots: '●●○○○○' });
    expect(logLine('zh-CN', pin)).toBe('密码键盘上已输入 2 位密码（最多 6 位）');
  });

  it('keep the line as written when it is not a typed event or an unknown one', () => {
    expect(logLine('zh-CN', entry('settings saved (bank: embedded sandbox)'))).toBe('settings saved (bank: embedded sandbox)');
    expect(logLine('zh-CN', entry('odd', { type: 'somethingNew' }))).toBe('odd');
    expect(logLine('zh-CN', entry('odd step', { type: 'step', step: 'notAStep' }))).toBe('odd step');
  });

  it('every flow step the backend names has words in both languages', async () => {
    const { en } = await import('../src/i18n/en');
    const steps = [
      'readDeviceInfo', 'bankInitialise', 'deviceInitialise', 'bankCompleteInitialise', 'bankEnrol', 'deviceEnrol',
      'bankCompleteEnrol', 'pairBegin', 'pairConfirm', 'loginBegin', 'integrityReport', 'loadSessionKeys',
      'bankChallenge', 'preparePayment', 'deviceApprove', 'bankApproval', 'deviceVerify', 'signConfirmation',
      'revoke', 'relayBankCommand', 'operatorReset',
    ];
    for (const step of steps) expect(Object.keys(en)).toContain(`logStep.${step}`);
  });
});
