import type { DeviceStatus } from '../../api/types';
import { WipePinPad } from './Owner';
import { activeDevice } from '../../state';
import { FirmwareLine, IndicatorLight, Notice } from '../common';
import { useApp, useController, useT } from '../context';
import { ReportLost } from './BySerial';
import { KeyStorePassphrase } from './KeyStore';

function DeviceCard({ d, active }: { d: DeviceStatus; active: boolean }) {
  const t = useT();
  const c = useController();
  const id = `dev-${d.deviceId}`;
  return (
    <li class={`card device-card${active ? ' active' : ''}`} aria-labelledby={`${id}-name`} data-testid={`device-${d.serial}`}>
      <div class="card-head">
        <h2 id={`${id}-name`} class="card-title">
          {d.name}
          {active && <span class="tag">{t('devices.inUse')}</span>}
        </h2>
        <IndicatorLight indicator={d.indicator} />
      </div>
      <dl class="facts">
        <dt>{t('devices.serial')}</dt>
        <dd>
          <code>{d.serial}</code>
        </dd>
        <dt>{t('devices.transport')}</dt>
        <dd>{t(`transport.${d.transport}`)}</dd>
        <dt>{t('devices.connection')}</dt>
        <dd>{d.connected ? t('devices.connected') : t('devices.notConnected')}</dd>
        <dt>{t('devices.lifecycle')}</dt>
        <dd>{t(`lifecycle.${d.lifecycle}`)}</dd>
        <dt>{t('devices.tamper')}</dt>
        <dd class={d.tamper === 'tampered' ? 'bad' : ''}>{t(`tamper.${d.tamper}`)}</dd>
        <dt>{t('devices.lock')}</dt>
        <dd class={d.lock === 'locked' ? 'bad' : ''}>{t(`lock.${d.lock}`)}</dd>
        <dt>{t('devices.paired')}</dt>
        <dd>{d.paired ? t('common.yes') : t('common.no')}</dd>
        <dt>{t('devices.customer')}</dt>
        <dd>{d.customerId ?? t('devices.noCustomer')}</dd>
        <dt>{t('devices.firmware')}</dt>
        <dd>
          <FirmwareLine device={d} />
        </dd>
        <dt>{t('devices.genuine')}</dt>
        <dd class={d.genuine === 'notGenuine' ? 'bad' : ''} data-testid={`genuine-${d.serial}`}>
          {t(`genuine.${d.genuine}`)}
          {d.genuineFailures.length > 0 && (
            <ul class="genuine-failures">
              {d.genuineFailures.map((f) => (
                <li key={f}>{f}</li>
              ))}
            </ul>
          )}
        </dd>
      </dl>
      <div class="actions">
        {d.connected ? (
          <button type="button" class="btn" onClick={() => void c.disconnect(d.deviceId)}>
            {t('devices.disconnect')}
          </button>
        ) : (
          <button type="button" class="btn btn-primary" onClick={() => void c.connect(d.deviceId)} data-testid={`connect-${d.serial}`}>
            {t('devices.connect')}
          </button>
        )}
        {!active && (
          <button type="button" class="btn" onClick={() => c.useDevice(d.deviceId)}>
            {t('devices.use')}
          </button>
        )}
        {d.connected && !d.paired && d.tamper === 'clear' && d.lifecycle !== 'revoked' && (
          <a class="btn" href="#/pairing" onClick={() => c.useDevice(d.deviceId)}>
            {t('devices.pair')}
          </a>
        )}
      </div>
    </li>
  );
}

export function DevicesScreen() {
  const t = useT();
  const c = useController();
  const devices = useApp((s) => s.devices);
  const active = useApp(activeDevice);
  const links = useApp((s) => s.links);
  const bankCommands = useApp((s) => s.bankCommands);
  return (
    <>
      <h1 tabIndex={-1}>{t('devices.title')}</h1>
      <p class="lead">{t('devices.lead')}</p>
      <div class="actions">
        <button type="button" class="btn" onClick={() => void c.refreshDevices()}>
          {t('devices.refresh')}
        </button>
      </div>
      <Notice screen="devices" />
      <KeyStorePassphrase />
      {Object.entries(links).map(([deviceId, l]) => (
        <p key={deviceId} class={`link-state ${l.link === 'sessionLost' ? 'bad' : ''}`} role="status" data-testid={`link-${deviceId}`}>
          <strong>{t(`link.${l.link}`)}</strong> {l.message}
        </p>
      ))}
      {Object.entries(bankCommands).map(([deviceId, b]) => (
        <p key={deviceId} class={`link-state ${b.applied && b.command === 'unlock' ? '' : 'bad'}`} role="alert" data-testid={`bank-command-${deviceId}`}>
          <strong>{t(`bankCommand.${b.command}`)}</strong> {b.message}
        </p>
      ))}
      {devices.length === 0 ? (
        <p class="empty">{t('devices.none')}</p>
      ) : (
        <ul class="cards" aria-label={t('devices.listLabel')}>
          {devices.map((d) => (
            <DeviceCard key={d.deviceId} d={d} active={active?.deviceId === d.deviceId} />
          ))}
        </ul>
      )}
      {active && <WipePinPad device={active} />}
      <ReportLost />
    </>
  );
}
