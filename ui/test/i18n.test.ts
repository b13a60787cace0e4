import { describe, expect, it } from 'vitest';
import { ERROR_KINDS } from '../src/api/errors';
import { CATALOGS, guessLanguage, LANGUAGES, translate, type MessageKey } from '../src/i18n';
import { en } from '../src/i18n/en';
import { zhCN } from '../src/i18n/zh-CN';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('catalogs', () => {
  it('en and zh-CN have exactly the same keys', () => {
    expect(Object.keys(zhCN).sort()).toEqual(Object.keys(en).sort());
  });

  it('no message is empty', () => {
    for (const lang of LANGUAGES) {
      for (const [k, v] of Object.entries(CATALOGS[lang])) expect(v.trim(), `${lang} ${k}`).not.toBe('');
    }
  });

  it('both languages use the same placeholders in each message', () => {
    for (const k of Object.keys(en) as MessageKey[]) {
      expect(placeholders(zhCN[k]), k).toEqual(placeholders(en[k]));
    }
  });

  it('every error kind has a title and a plain-words hint in both languages', () => {
    for (const kind of ERROR_KINDS) {
      for (const lang of LANGUAGES) {
        expect(CATALOGS[lang][`error.${kind}` as MessageKey], `${lang} error.${kind}`).toBeTruthy();
        expect(CATALOGS[lang][`error.${kind}.hint` as MessageKey], `${lang} error.${kind}.hint`).toBeTruthy();
      }
    }
  });

  it('the Chinese catalog is actually Chinese (beyond names and codes)', () => {
    const han = /[\u4e00-\u9fff]/;
    const untranslated = (Object.keys(en) as MessageKey[]).filter(
      (k) => !han.test(zhCN[k]) && zhCN[k] === en[k] && !['app.title', 'lang.en', 'lang.zh-CN', 'transport.usb', 'keypad.ok.short'].includes(k),
    );
    expect(untranslated).toEqual([]);
  });
});

describe('translate', () => {
  it('fills placeholders and leaves unknown ones', () => {
    expect(translate('en', 'pin.count', { entered: 3, length: 6 })).toBe('3 of 6 PIN digits entered on the device');
    expect(translate('zh-CN', 'pin.count', { entered: 3, length: 6 })).toBe('已在设备上输入 3/6 位密码');
    expect(translate('en', 'pin.count', { entered: 1 })).toBe('1 of {length} PIN digits entered on the device');
  });

  it('guesses Chinese from the system languages', () => {
    expect(guessLanguage(['zh-CN', 'en'])).toBe('zh-CN');
    expect(guessLanguage(['zh-TW'])).toBe('zh-CN');
    expect(guessLanguage(['en-GB', 'de'])).toBe('en');
    expect(guessLanguage([])).toBe('en');
  });
});
