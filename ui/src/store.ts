// A minimal observable store and a Preact hook to read a slice of it.
import { useEffect, useRef, useState } from 'preact/hooks';

export interface Store<T> {
  get(): T;
  set(update: (s: T) => T): void;
  subscribe(fn: (s: T) => void): () => void;
}

export function createStore<T>(initial: T): Store<T> {
  let state = initial;
  const subs = new Set<(s: T) => void>();
  return {
    get: () => state,
    set(update) {
      const next = update(state);
      if (next === state) return;
      state = next;
      for (const fn of [...subs]) fn(state);
    },
    subscribe(fn) {
      subs.add(fn);
      return () => subs.delete(fn);
    },
  };
}

/** Re-render when the selected slice changes (compared with Object.is). */
export function useStore<T, S>(store: Store<T>, select: (s: T) => S): S {
  const selectRef = useRef(select);
  selectRef.current = select;
  const [, setTick] = useState(0);
  const value = select(store.get());
  const last = useRef(value);
  last.current = value;
  useEffect(() => {
    const check = (s: T): void => {
      if (!Object.is(selectRef.current(s), last.current)) setTick((n) => n + 1);
    };
    check(store.get());
    return store.subscribe(check);
  }, [store]);
  return value;
}
