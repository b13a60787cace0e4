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
  // As companion::input reads it in the app's languages (en, zh-CN: decimal point): thousands
  // separators only in groups of three and with a decimal part ("1,234.50"); "12,34" or
  // "1,234" are never guessed at (see amountUsesDecimalComma for the reason shown).
  const t = text.trim();
  const grouped = /^[0-9]{1,3}(?:[,\s\u00a0][0-9]{3})+\.[0-9]+$/.test(t);
  if (/[,\s\u00a0]/.test(t) && !grouped) return null;
  const s = t.replace(/[,\s\u00a0]/g, '');
  const m = /^([0-9]+)(?:\.([0-9]+))?$/.exec(s);
  if (!m) return null;
  const whole = m[1];
  const frac = m[2] ?? '';
  if (frac.length > digits) return null;
  const minor = BigInt(whole + frac.padEnd(digits, '0'));
  if (minor <= 0n) return null;
  if (minor > 10n ** 15n) return null; // far above any sandbox limit; keeps Intl exact
  return minor.toString();
}

/** "12,34": a decimal comma, which the app's languages do not use (refused, with this reason). */
export function amountUsesDecimalComma(text: string): boolean {
  return /^[0-9]+,[0-9]{1,2}$/.test(text.trim());
}

/**
 * A payee account as companion::input accepts it: an IBAN whose mod-97 check holds, or a
 * domestic account number of 16 to 19 digits. Spaces and dashes between groups are ignored.
 */
export function isValidAccount(text: string): boolean {
  const s = text.replace(/[\s-]+/g, '').toUpperCase();
  if (/^[A-Z]{2}[0-9]{2}/.test(s)) {
    if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(s)) return false;
    const rearranged = s.slice(4) + s.slice(0, 4);
    let rest = 0;
    for (const ch of rearranged) {
      const v = ch >= 'A' ? ch.charCodeAt(0) - 55 : ch.charCodeAt(0) - 48;
      rest = v >= 10 ? (rest * 100 + v) % 97 : (rest * 10 + v) % 97;
    }
    return rest === 1;
  }
  return /^[0-9]{16,19}$/.test(s);
}

/**
 * Integer minor units as the PIN pad writes them (firmware_protocol::display): the ISO 4217
 * code, then the amount grouped by commas, the same in every language, so what the customer
 * compares on the PC and on the device is identical: ("123450", "CNY") -> "CNY 1,234.50".
 */
export function formatAmount(minor: string, currency: string, _lang?: Language): string {
  const digits = minorDigits(currency);
  const n = BigInt(minor);
  const neg = n < 0n;
  const abs = neg ? -n : n;
  const scale = 10n ** BigInt(digits);
  const whole = (abs / scale).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const frac = (abs % scale).toString().padStart(digits, '0');
  return `${currency} ${neg ? '-' : ''}${whole}${digits > 0 ? '.' + frac : ''}`;
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

/** A date and time as the customer's language writes it ("5 Dec 2026, 03:10"). */
export function formatDateTime(iso: string, lang: Language): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(lang, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });
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
