// Pure formatting helpers: amounts in integer minor units, PIN dots, hashes, accounts, times.
import type { Language } from './api/types';

/** Digits after the decimal point for a currency (2 unless Intl says otherwise). */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/**
 * Parse what a person typed ("1,234.5", "120", "0.07") into integer minor units as a decimal
 * string, without floating point. Returns null when it is not a positive amount with at most the
 * currency's number of decimals.
 */
export function parseAmount(text: string, currency: string): string | null {
  const digits = minorDigits(currency);
  const s = text.trim().replace(/[,\s\u00a0]/g, '');
  const m = /^([0-9]+)(?:\.([0-9]*))?$/.exec(s);
  if (!m) return null;
  const whole = m[1];
  const frac = m[2] ?? '';
  if (frac.length > digits) return null;
  const minor = BigInt(whole + frac.padEnd(digits, '0'));
  if (minor <= 0n) return null;
  if (minor > 10n ** 15n) return null; // far above any sandbox limit; keeps Intl exact
  return minor.toString();
}

/** Format integer minor units for a language, e.g. ("12050", "CNY", "zh-CN") -> "¥120.50". */
export function formatAmount(minor: string, currency: string, lang: Language): string {
  const digits = minorDigits(currency);
  const n = BigInt(minor);
  const neg = n < 0n;
  const abs = neg ? -n : n;
  const scale = 10n ** BigInt(digits);
  const whole = abs / scale;
  const frac = (abs % scale).toString().padStart(digits, '0');
  const plain = `${neg ? '-' : ''}${whole.toString()}${digits > 0 ? '.' + frac : ''}`;
  try {
    const f = new Intl.NumberFormat(lang, {
      style: 'currency',
      currency,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    // Intl accepts a decimal string exactly (no float rounding).
    return f.format(plain as unknown as number);
  } catch {
    return `${currency} ${plain}`;
  }
}

export const DOT_FILLED = '\u25cf'; // ●
export const DOT_EMPTY = '\u25cb'; // ○

/** PIN digits entered on the device as dots: (3, 6) -> "●●●○○○". Never more dots than `length`. */
export function formatDots(entered: number, length: number): string {
  const len = Math.max(0, Math.floor(length));
  const n = Math.max(0, Math.min(len, Math.floor(entered)));
  return DOT_FILLED.repeat(n) + DOT_EMPTY.repeat(len - n);
}

/** "3f9a0c5de1b2...5e6f6071": enough to compare by eye; the full hash is shown on request. */
export function shortHash(hash: string, each = 8): string {
  return hash.length <= each * 2 + 1 ? hash : `${hash.slice(0, each)}\u2026${hash.slice(-each)}`;
}

/** Groups of four digits: "6222021000001234" -> "6222 0210 0000 1234". */
export function groupAccount(acct: string): string {
  return acct.replace(/\s+/g, '').replace(/(.{4})(?=.)/g, '$1 ');
}

/** "6222 0210 0000 1234" -> "•••• 1234". */
export function maskAccount(acct: string): string {
  const d = acct.replace(/\s+/g, '');
  return d.length <= 4 ? d : `\u2022\u2022\u2022\u2022 ${d.slice(-4)}`;
}

export function formatTime(iso: string, lang: Language): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** A pairing code as two groups of three: "123456" -> "123 456". */
export function formatCode(code: string): string {
  return code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code;
}
