import { useState } from 'preact/hooks';
import type { FaultKind } from '../../api/types';
import { formatTime } from '../../format';
import { MockDevicePanel, Notice } from '../common';
import { useApp, useController, useT } from '../context';

const FAULTS: Exclude<FaultKind, 'delay'>[] = ['drop', 'corrupt', 'disconnect', 'busy', 'userTooSlow'];

export function QaScreen() {
  const t = useT();
  const c = useController();
  const devices = useApp((s) => s.devices);
  const logs = useApp((s) => s.logs);
  const lang = useApp((s) => s.lang);
  const mocks = devices.filter((d) => d.mock);
  const [chosen, setChosen] = useState('');
  const [name, setName] = useState('');
  const [delay, setDelay] = useState('500');
  const dev = mocks.find((d) => d.deviceId === chosen) ?? mocks[0];

  return (
    <>
      <h1 tabIndex={-1}>{t('qa.title')}</h1>
      <p class="lead">{t('qa.lead')}</p>
      <Notice screen="qa" />
      <Notice screen="keypad" />

      <section aria-labelledby="qa-mocks">
        <h2 id="qa-mocks">{t('qa.mocks')}</h2>
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            void c.qaStart(name).then(() => setName(''));
          }}
        >
          <label for="qa-name">{t('qa.newName')}</label>
          <input id="qa-name" value={name} placeholder={t('qa.newNamePlaceholder')} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          <button type="submit" class="btn" data-testid="qa-start">
            {t('qa.start')}
          </button>
        </form>
        {mocks.length === 0 ? (
          <p class="empty">{t('qa.noMocks')}</p>
        ) : (
          <table class="table">
            <caption class="sr-only">{t('qa.mocks')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('qa.col.device')}</th>
                <th scope="col">{t('devices.lifecycle')}</th>
                <th scope="col">{t('devices.connection')}</th>
                <th scope="col">
                  <span class="sr-only">{t('qa.col.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {mocks.map((d) => (
                <tr key={d.deviceId} class={d.deviceId === dev?.deviceId ? 'selected' : ''}>
                  <td>
                    <label class="check">
                      <input type="radio" name="qa-target" checked={d.deviceId === dev?.deviceId} onChange={() => setChosen(d.deviceId)} />
                      {d.name} <code>{d.serial}</code>
                    </label>
                  </td>
                  <td>
                    {t(`lifecycle.${d.lifecycle}`)}
                    {d.tamper === 'tampered' && <span class="bad"> · {t('tamper.tampered')}</span>}
                  </td>
                  <td>{d.connected ? t('devices.connected') : t('devices.notConnected')}</td>
                  <td class="row-actions">
                    {!d.connected && (
                      <button type="button" class="btn small" onClick={() => void c.connect(d.deviceId)}>
                        {t('devices.connect')}
                      </button>
                    )}
                    <button type="button" class="btn small" onClick={() => void c.qaStop(d.deviceId)}>
                      {t('qa.stop')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      {dev && (
        <div class="qa-grid">
          <MockDevicePanel device={dev} />
          <section class="card" aria-labelledby="qa-faults">
            <h2 id="qa-faults" class="card-title">
              {t('qa.faults', { name: dev.name })}
            </h2>
            <p class="muted small">{t('qa.faultsText')}</p>
            <div class="inline-form">
              <label for="qa-delay">{t('qa.delayMs')}</label>
              <input id="qa-delay" inputMode="numeric" value={delay} size={6} onInput={(e) => setDelay((e.target as HTMLInputElement).value)} />
              <button type="button" class="btn" onClick={() => void c.qaFault(dev.deviceId, { kind: 'delay', ms: Math.max(0, Number.parseInt(delay, 10) || 0) })}>
                {t('fault.delay')}
              </button>
            </div>
            <div class="actions wrap">
              {FAULTS.map((f) => (
                <button type="button" class="btn" key={f} onClick={() => void c.qaFault(dev.deviceId, { kind: f })} data-testid={`fault-${f}`}>
                  {t(`fault.${f}`)}
                </button>
              ))}
            </div>
            <div class="actions wrap">
              <button type="button" class="btn" onClick={() => void c.qaClearFaults(dev.deviceId)}>
                {t('qa.clearFaults')}
              </button>
              <button type="button" class="btn btn-danger" onClick={() => void c.qaTripTamper(dev.deviceId)} data-testid="qa-tamper">
                {t('qa.tamper')}
              </button>
              <button type="button" class="btn" onClick={() => void c.qaPushConfirmation(dev.deviceId)} data-testid="qa-push">
                {t('qa.push')}
              </button>
            </div>
          </section>
        </div>
      )}

      <section aria-labelledby="qa-log">
        <h2 id="qa-log">{t('qa.eventLog')}</h2>
        <p class="muted small">{t('qa.eventLogHint')}</p>
        <ol class="event-log" role="log" aria-live="polite" data-testid="qa-log">
          {logs.slice(-40).reverse().map((e) => (
            <li key={e.seq} class={`lvl-${e.level}`}>
              <time dateTime={e.time}>{formatTime(e.time, lang)}</time> <span class="src">{t(`source.${e.source}`)}</span> {e.message}
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}
