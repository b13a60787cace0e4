import type { ErrorKind as RustErrorKind } from './generated';

// Errors crossing the IPC boundary are plain serialisable objects `{ kind, message }`.
// `kind` picks the plain-words explanation shown to the user (i18n key `error.<kind>`);
// `message` is the backend's technical detail, shown under "Details".

export const ERROR_KINDS = [
  'deviceNotFound',
  'deviceDisconnected',
  'deviceBusy',
  'timeout',
  'userCancelled',
  'userTooSlow',
  'tampered',
  'locked',
  'revoked',
  'notPaired',
  'notInitialised',
  'notEnrolled',
  'notBound',
  'pairingFailed',
  'keyCheckFailed',
  'integrityFailed',
  'corruptFrame',
  'bankUnreachable',
  'bankRejected',
  'notLoggedIn',
  'staffAuthRequired',
  'staffAuthFailed',
  'staffNotAllowed',
  'invalidInput',
  'notFound',
  'internal',
  'noBankProfile',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

// The list is the Rust one (./generated.ts): tsc fails when a kind is on one side only.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameKinds: Same<ErrorKind, RustErrorKind> = true;
void sameKinds;

export interface AppError {
  kind: ErrorKind;
  /** A finer typed code (`device.PinPolicy`, `bank.pin_locked`, `input.invalid_amount`), worded by the screens. */
  code?: string;
  /** Technical details in English, for support. */
  message: string;
  /** A payment that failed: whether the bank booked it (absent: no payment was under way). */
  paid?: boolean;
}

const KIND_SET: ReadonlySet<string> = new Set(ERROR_KINDS);

export function isErrorKind(x: unknown): x is ErrorKind {
  return typeof x === 'string' && KIND_SET.has(x);
}

export function appError(kind: ErrorKind, message: string): AppError {
  return { kind, message };
}

/**
 * Turn anything thrown or rejected (a backend error object, a string from Tauri, an Error)
 * into an AppError. Unknown kinds become `internal` but keep their text.
 */
export function toAppError(e: unknown): AppError {
  if (e && typeof e === 'object' && 'kind' in e) {
    const kind = (e as { kind: unknown }).kind;
    const raw = (e as { message?: unknown }).message;
    const message = typeof raw === 'string' ? raw : raw === undefined ? '' : JSON.stringify(raw);
    const code = (e as { code?: unknown }).code;
    const paid = (e as { paid?: unknown }).paid;
    if (isErrorKind(kind)) {
      return {
        kind,
        message,
        ...(typeof code === 'string' ? { code } : {}),
        ...(typeof paid === 'boolean' ? { paid } : {}),
      };
    }
    return { kind: 'internal', message: `${String(kind)}${message ? ': ' + message : ''}` };
  }
  if (e instanceof Error) return { kind: 'internal', message: e.message };
  if (typeof e === 'string') {
    // Tauri delivers a Rust error that serialised as a bare string this way.
    try {
      const parsed: unknown = JSON.parse(e);
      if (parsed && typeof parsed === 'object' && 'kind' in parsed) return toAppError(parsed);
    } catch {
      /* not JSON: plain text */
    }
    return { kind: 'internal', message: e };
  }
  return { kind: 'internal', message: e === undefined ? '' : String(e) };
}

/** Errors the user can fix by trying again (shown with a "Try again" button). */
export function isRetryable(e: AppError): boolean {
  return (
    e.kind === 'deviceBusy' ||
    e.kind === 'timeout' ||
    e.kind === 'userTooSlow' ||
    e.kind === 'userCancelled' ||
    e.kind === 'deviceDisconnected' ||
    e.kind === 'corruptFrame' ||
    e.kind === 'bankUnreachable'
  );
}
