import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Controller } from '../controller';
import { translate, type MessageKey } from '../i18n';
import type { State } from '../state';
import { useStore } from '../store';

export const Ctl = createContext<Controller | null>(null);

export function useController(): Controller {
  const c = useContext(Ctl);
  if (!c) throw new Error('no controller');
  return c;
}

/** Read a slice of the app state. */
export function useApp<S>(select: (s: State) => S): S {
  return useStore(useController().store, select);
}

export type T = (key: MessageKey, params?: Record<string, string | number>) => string;

/** The translator for the current language. */
export function useT(): T {
  const lang = useApp((s) => s.lang);
  return (key, params) => translate(lang, key, params);
}
