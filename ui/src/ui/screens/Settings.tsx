import { useEffect, useState } from 'preact/hooks';
import type { Language, Settings, Theme } from '../../api/types';
import { LANGUAGES } from '../../i18n';
import { Field, fieldAria, Notice } from '../common';
import { useApp, useController, useT } from '../context';

const THEMES: Theme[] = ['system', 'light', 'dark'];

export function SettingsScreen() {
  const t = useT();
  const c = useController();
  const saved = useApp((s) => s.settings);
  const info = useApp((s) => s.info);
  const [draft, setDraft] = useState<Settings | null>(saved);
  useEffect(() => {
    if (saved) setDraft((d) => (d ? { ...d, language: saved.language, theme: saved.theme, staffMode: saved.staffMode, firstRunDone: saved.firstRunDone } : saved));
  }, [saved]);
  if (!draft) return <h1 tabIndex={-1}>{t('settings.title')}</h1>;
  const patch = (p: Partial<Settings>) => setDraft({ ...draft, ...p });
  // The production build: the bank is the administrator's (the bank profile) unless it lets
  // the user override it.
  const profile = info?.flavour === 'production' ? info.bankProfile : null;
  const bankLocked = info?.flavour === 'production' && !(profile?.status === 'loaded' && profile.userOverride);

  const readCa = (e: Event) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) void file.text().then((text) => patch({ bankCaPem: text }));
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('settings.title')}</h1>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          void c.saveSettings(draft);
        }}
      >
        <fieldset>
          <legend>{t('settings.bank')}</legend>
          {bankLocked && (
            <p class="muted" data-testid="bank-locked">
              {t('settings.bankLocked', { path: profile?.path ?? '' })}
            </p>
          )}
          <Field id="set-url" label={t('settings.bankUrl')} hint={t(info?.flavour === 'production' ? 'settings.bankUrlHintProfile' : 'settings.bankUrlHint')}>
            <input {...fieldAria('set-url', null, true)} type="url" readOnly={bankLocked} value={draft.bankUrl} placeholder="https://bank.example/api" onInput={(e) => patch({ bankUrl: (e.target as HTMLInputElement).value })} />
          </Field>
          <Field id="set-ca" label={t('settings.ca')} hint={t('settings.caHint')}>
            <textarea {...fieldAria('set-ca', null, true)} rows={4} readOnly={bankLocked} value={draft.bankCaPem ?? ''} placeholder="-----BEGIN CERTIFICATE-----" onInput={(e) => patch({ bankCaPem: (e.target as HTMLTextAreaElement).value || null })} />
          </Field>
          {!bankLocked && (
            <label class="btn file-pick">
              {t('settings.caFile')}
              <input class="visually-hidden-file" type="file" accept=".pem,.crt,.cer" onChange={readCa} />
            </label>
          )}
        </fieldset>
        <fieldset>
          <legend>{t('settings.appearance')}</legend>
          <Field id="set-lang" label={t('settings.language')}>
            <select id="set-lang" value={draft.language} onChange={(e) => patch({ language: (e.target as HTMLSelectElement).value as Language })}>
              {LANGUAGES.map((l) => (
                <option key={l} value={l} lang={l}>
                  {t(`lang.${l}`)}
                </option>
              ))}
            </select>
          </Field>
          <Field id="set-theme" label={t('settings.theme')}>
            <select id="set-theme" value={draft.theme} onChange={(e) => patch({ theme: (e.target as HTMLSelectElement).value as Theme })}>
              {THEMES.map((th) => (
                <option key={th} value={th}>
                  {t(`theme.${th}`)}
                </option>
              ))}
            </select>
          </Field>
        </fieldset>
        <fieldset>
          <legend>{t('settings.staff')}</legend>
          <label class="check">
            <input
              type="checkbox"
              checked={saved?.staffMode ?? false}
              onChange={(e) => {
                const staffMode = (e.target as HTMLInputElement).checked;
                patch({ staffMode });
                // Applies at once (the menu changes), as the language does; other edits stay in the form.
                if (saved) void c.saveSettings({ ...saved, staffMode }, true);
              }}
              data-testid="staff-mode"
            />{' '}
            {t('settings.staffMode')}
          </label>
          <p class="muted small">{t(info?.flavour === 'production' ? 'settings.staffModeHint' : 'settings.staffModeHintSandbox')}</p>
        </fieldset>
        <Notice screen="settings" />
        <div class="actions">
          <button type="submit" class="btn btn-primary" data-testid="settings-save">
            {t('common.save')}
          </button>
        </div>
      </form>
      {info && (
        <section aria-labelledby="about-h">
          <h2 id="about-h">{t('settings.about')}</h2>
          <dl class="facts">
            <dt>{t('settings.version')}</dt>
            <dd>{info.version}</dd>
            <dt>{t('settings.buildHash')}</dt>
            <dd>
              <code>{info.buildHash}</code>
            </dd>
            <dt>{t('settings.backend')}</dt>
            <dd>{t(`settings.backend.${info.backend}`)}</dd>
            <dt>{t('settings.bankInUse')}</dt>
            <dd>
              {info.flavour === 'production'
                ? profile?.status === 'loaded'
                  ? `${profile.displayName} (${saved?.bankUrl || profile.url})`
                  : t('noBank.title')
                : info.embedded || !saved?.bankUrl
                  ? t('settings.embedded')
                  : saved.bankUrl}
            </dd>
          </dl>
        </section>
      )}
    </>
  );
}
