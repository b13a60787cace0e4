import { render } from 'preact';
import { createBackend } from './api';
import { createController } from './controller';
import { guessLanguage } from './i18n';
import { initialState } from './state';
import { createStore } from './store';
import { App } from './ui/App';
import { Ctl } from './ui/context';
import './styles.css';

const store = createStore(initialState(guessLanguage(navigator.languages ?? [navigator.language])));
const controller = createController(createBackend(), store);
const root = document.getElementById('app')!;
render(
  <Ctl.Provider value={controller}>
    <App />
  </Ctl.Provider>,
  root,
);
controller.start().then(
  () => root.setAttribute('data-ready', 'true'),
  (e: unknown) => {
    root.setAttribute('data-ready', 'error');
    console.error('PinBridge UI failed to start', e);
  },
);
