// Two catalogs with the same keys (checked by the type of zh-CN and by a unit test).
import type { Language } from '../api/types';
import { en } from './en';
import { zhCN } from './zh-CN';

export type MessageKey = keyof typeof en;
export type Catalog = Record<MessageKey, string>;

export const CATALOGS: Record<Language, Catalog> = { en, 'zh-CN': zhCN };
export const LANGUAGES: Language[] = ['en', 'zh-CN'];

/** `{name}` placeholders are replaced from params; a missing key falls back to English. */
export function translate(lang: Language, key: MessageKey, params?: Record<string, string | number>): string {
  const text = CATALOGS[lang][key] ?? en[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
}

/** The language to start in before settings load: Chinese if the system prefers it. */
export function guessLanguage(navigatorLanguages: readonly string[]): Language {
  return navigatorLanguages.some((l) => l.toLowerCase().startsWith('zh')) ? 'zh-CN' : 'en';
}
