// The error box and the Logs screen in zh-CN: what the customer reads is worded from typed
// codes and events, with the backend's English only under "technical details".
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { MockBackend } from '../src/api/mock';
import { createController } from '../src/controller';
import { initialState } from '../src/state';
import { createStore } from '../src/store';
import { ErrorBox } from '../src/ui/common';
import { Ctl } from '../src/ui/context';
import { LogsScreen } from '../src/ui/screens/Logs';
import type { ComponentChildren } from 'preact';

let root: HTMLElement | null = null;

afterEach(() => {
  if (root) {
    render(null, root);
    root.remove();
    root = null;
  }
});

async function mountZh(children: ComponentChildren, logs: ReturnType<typeof initialState>['logs'] = []) {
  const el = document.createElement('div');
  document.body.appendChild(el);
  root = el;
  const store = createStore({ ...initialState('zh-CN'), logs });
  const c = createController(new MockBackend({ stepMs: 0 }), store);
  await act(async () => {
    render(<Ctl.Provider value={c}>{children}</Ctl.Provider>, el);
  });
  return el;
}

describe('zh-CN screens', () => {
  it('the error box words the typed code in Chinese and folds the English away', async () => {
    const el = await mountZh(
      <ErrorBox error={{ kind: 'invalidInput', code: 'device.PinPolicy', message: 'the PIN pad refused Enrol: PinPolicy' }} />,
    );
    const what = el.querySelector('.error-what');
    expect(what?.textContent).toBe('密码长度不符合要求。');
    expect(el.querySelector('.error-title')?.textContent).toMatch(/[\u4e00-\u9fff]/);
    expect(el.querySelector('summary')?.textContent).toBe('技术详情（英文，供技术支持使用）');
  });

  it('a cancel on the PIN pad and a prompt left to time out are neutral, a fault stays red', async () => {
    const tone = async (kind: 'userCancelled' | 'userTooSlow' | 'timeout') => {
      const el = await mountZh(<ErrorBox error={{ kind, message: kind, paid: false }} />);
      const box = el.querySelector<HTMLElement>('.error-box');
      const found = { tone: box?.dataset.tone, role: box?.getAttribute('role') };
      render(null, el);
      return found;
    };
    expect(await tone('userCancelled')).toEqual({ tone: 'neutral', role: 'status' });
    expect(await tone('userTooSlow')).toEqual({ tone: 'neutral', role: 'status' });
    expect(await tone('timeout')).toEqual({ tone: 'danger', role: 'alert' });
  });

  it('the Logs screen shows flow events in Chinese', async () => {
    const el = await mountZh(<LogsScreen />, [
      {
        seq: 1,
        time: '2026-12-05T03:00:00Z',
        level: 'info',
        source: 'app',
        message: '  - bank: preparing the payment',
        event: { type: 'step', step: 'preparePayment' },
      },
      {
        seq: 2,
        time: '2026-12-05T03:00:01Z',
        level: 'info',
        source: 'app',
        message: '    waiting for the user on the PIN pad',
        event: { type: 'waitingForUser' },
      },
    ]);
    const lines = [...el.querySelectorAll('td.msg')].map((td) => td.textContent);
    expect(lines).toEqual(['正在等待客户在密码键盘上操作', '银行：正在准备付款']);
  });
});
