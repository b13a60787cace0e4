import { describe, expect, it } from 'vitest';
import { amountUsesDecimalComma, formatAmount, formatCode, formatDots, groupAccount, isValidAccount, maskAccount, minorDigits, parseAmount, shortHash } from '../src/format';

describe('amounts', () => {
  it('parses what people type into integer minor units, without floats', () => {
    expect(parseAmount('120.50', 'CNY')).toBe('12050');
    expect(parseAmount('120.5', 'CNY')).toBe('12050');
    expect(parseAmount('120', 'CNY')).toBe('12000');
    expect(parseAmount(' 1,234.07 ', 'CNY')).toBe('123407');
    expect(parseAmount('0.07', 'CNY')).toBe('7');
    expect(parseAmount('0.1', 'USD')).toBe('10'); // 0.1 is exact here, unlike in floating point
    expect(parseAmount('1234567890123.45', 'CNY')).toBe('123456789012345');
  });

  it('rejects zero, negatives, too many decimals and junk', () => {
    for (const bad of ['', '0', '0.00', '-5', '12.345', '1e3', 'abc', '12.3.4', '.5x', '١٢']) {
      expect(parseAmount(bad, 'CNY'), bad).toBeNull();
    }
    expect(parseAmount('10.5', 'JPY')).toBeNull(); // yen has no minor unit
    expect(parseAmount('10', 'JPY')).toBe('10');
  });

  it('never reads 12,34 as 1,234 (as companion::input, en and zh-CN use a decimal point)', () => {
    expect(parseAmount('12,34', 'CNY')).toBeNull();
    expect(amountUsesDecimalComma('12,34')).toBe(true);
    expect(parseAmount('1,234', 'CNY')).toBeNull(); // grouping without decimals: ambiguous
    expect(parseAmount('1,23,4.00', 'CNY')).toBeNull();
    expect(parseAmount('1,234.50', 'CNY')).toBe('123450');
  });

  it('accepts IBANs whose check digits hold and 16-19 digit domestic accounts', () => {
    expect(isValidAccount('DE89 3704 0044 0532 0130 00')).toBe(true);
    expect(isValidAccount('fr7630006000011234567890189')).toBe(true);
    expect(isValidAccount('DE88370400440532013000')).toBe(false);
    expect(isValidAccount('6222 0800 1122 3344')).toBe(true);
    expect(isValidAccount('12')).toBe(false);
    expect(isValidAccount('12345678')).toBe(false);
  });

  it('knows the minor digits of a currency', () => {
    expect(minorDigits('CNY')).toBe(2);
    expect(minorDigits('JPY')).toBe(0);
    expect(minorDigits('XXZ-bad')).toBe(2);
  });

  it('formats minor units as the PIN pad does (code, grouped), exactly', () => {
    expect(formatAmount('12050', 'CNY', 'zh-CN')).toBe('CNY 120.50');
    expect(formatAmount('12050', 'CNY', 'en')).toBe('CNY 120.50'); // as the PIN pad shows it
    expect(formatAmount('123456789', 'USD', 'en')).toBe('USD 1,234,567.89');
    expect(formatAmount('7', 'EUR', 'en')).toBe('EUR 0.07');
    expect(formatAmount('900719925474099312', 'USD', 'en')).toBe('USD 9,007,199,254,740,993.12');
    expect(formatAmount('500', 'JPY', 'en')).toBe('JPY 500');
  });
});

describe('PIN dots', () => {
  it('shows entered digits as filled dots out of the length', () => {
    expect(formatDots(0, 6)).toBe('○○○○○○');
    expect(formatDots(3, 6)).toBe('●●●○○○');
    expect(formatDots(3, 4)).toBe('●●●○');
    expect(formatDots(6, 6)).toBe('●●●●●●');
  });
  it('never shows more dots than the length, nor negative counts', () => {
    expect(formatDots(9, 6)).toBe('●●●●●●');
    expect(formatDots(-2, 4)).toBe('○○○○');
    expect(formatDots(2, 0)).toBe('');
  });
});

describe('other formatting', () => {
  it('shortens hashes for reading by eye', () => {
    const h = '3f9a0c5de1b27a4486f0e2c917b35d60a8e4f12b7c9d03e56a1b2c3d4e5f6071';
    expect(shortHash(h)).toBe('3f9a0c5d…4e5f6071');
    expect(shortHash('abcd')).toBe('abcd');
  });
  it('groups and masks accounts', () => {
    expect(groupAccount('6222021000001234')).toBe('6222 0210 0000 1234');
    expect(groupAccount('6222 0210 0000 12')).toBe('6222 0210 0000 12');
    expect(maskAccount('6222 0210 0000 1234')).toBe('•••• 1234');
  });
  it('splits a pairing code in two groups', () => {
    expect(formatCode('123456')).toBe('123 456');
    expect(formatCode('12345')).toBe('12345');
  });
});
