// Picks the backend: the desktop shell's IPC inside Tauri, the scripted MockBackend elsewhere
// (`npm run dev`, the browser end-to-end tests). `?mockStepMs=N` sets the mock's pace; `?customer`
// starts it as a customer's first start (no staff mode, the guided first run).
import type { Backend } from './backend';
import { MockBackend } from './mock';
import { isTauri, TauriBackend } from './tauri';
import { guessLanguage } from '../i18n';

export type { Backend, ProgressSink, EventSink, Unsubscribe } from './backend';
export * from './errors';
export type * from './types';

export function createBackend(): Backend {
  if (isTauri()) return new TauriBackend();
  const params = new URLSearchParams(window.location.search);
  const step = Number(params.get('mockStepMs') ?? '');
  return new MockBackend({
    stepMs: Number.isFinite(step) && step >= 0 && params.has('mockStepMs') ? step : 250,
    language: guessLanguage(navigator.languages ?? [navigator.language]),
    // `?customer` starts as a customer's first start does: no staff mode, the guided first run.
    ...(params.has('customer') ? { staffMode: false, firstRunDone: false } : {}),
  });
}
