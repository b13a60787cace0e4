// What the backend reports as typed data, worded in the app's language: an error's code
// (`device.PinPolicy`, `bank.pin_locked`, `input.invalid_amount`) and a log line's flow event.
// The backend's own words (`message`) are English, for support and the log file; a customer
// reads these instead wherever the data is typed.
import type { AppError } from './api/errors';
import type { Language, LogEntry } from './api/types';
import { en } from './i18n/en';
import { translate, type MessageKey } from './i18n';

function isMessageKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(en, key);
}

/** The error's code in words, or null when the code is absent or not one the app words. */
export function errorDetail(lang: Language, error: AppError): string | null {
  if (!error.code) return null;
  const key = `errorCode.${error.code}`;
  return isMessageKey(key) ? translate(lang, key) : null;
}

type Params = Record<string, string | number>;

/** The event's scalar fields, as placeholders. */
function params(event: Record<string, unknown>): Params {
  const out: Params = {};
  for (const [name, value] of Object.entries(event)) {
    if (typeof value === 'string' || typeof value === 'number') out[name] = value;
    else if (typeof value === 'boolean') out[name] = String(value);
  }
  return out;
}

/** A log line in the app's language when it reports a typed flow event, else its own words. */
export function logLine(lang: Language, entry: LogEntry): string {
  const event = entry.event;
  if (!event || typeof event.type !== 'string') return entry.message;
  if (event.type === 'step' && typeof event.step === 'string') {
    const key = `logStep.${event.step}`;
    return isMessageKey(key) ? translate(lang, key) : entry.message;
  }
  const key = `logEvent.${event.type}`;
  return isMessageKey(key) ? translate(lang, key, params(event)) : entry.message;
}
