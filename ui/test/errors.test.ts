import { describe, expect, it } from 'vitest';
import { isRetryable, toAppError } from '../src/api/errors';

describe('error mapping', () => {
  it('keeps a backend error object as it is', () => {
    expect(toAppError({ kind: 'tampered', message: 'PB-1 reports TAMPERED' })).toEqual({ kind: 'tampered', message: 'PB-1 reports TAMPERED' });
  });
  it('maps unknown kinds to internal but keeps the text', () => {
    expect(toAppError({ kind: 'flux', message: 'capacitor' })).toEqual({ kind: 'internal', message: 'flux: capacitor' });
    expect(toAppError({ kind: 'tampered' })).toEqual({ kind: 'tampered', message: '' });
    expect(toAppError({ kind: 'timeout', message: { ms: 5 } })).toEqual({ kind: 'timeout', message: '{"ms":5}' });
  });
  it('parses a JSON string (how a serialised Rust error may arrive)', () => {
    expect(toAppError('{"kind":"deviceBusy","message":"BUSY"}')).toEqual({ kind: 'deviceBusy', message: 'BUSY' });
  });
  it('turns plain strings, Errors and nothing into internal errors', () => {
    expect(toAppError('command login not found')).toEqual({ kind: 'internal', message: 'command login not found' });
    expect(toAppError(new TypeError('x is undefined'))).toEqual({ kind: 'internal', message: 'x is undefined' });
    expect(toAppError(undefined)).toEqual({ kind: 'internal', message: '' });
    expect(toAppError(42)).toEqual({ kind: 'internal', message: '42' });
  });
  it('says which errors a retry can fix', () => {
    expect(isRetryable({ kind: 'deviceBusy', message: '' })).toBe(true);
    expect(isRetryable({ kind: 'userTooSlow', message: '' })).toBe(true);
    expect(isRetryable({ kind: 'tampered', message: '' })).toBe(false);
    expect(isRetryable({ kind: 'revoked', message: '' })).toBe(false);
  });
});
