// Where the computer has no OS key store (a headless Linux desktop, no Secret Service), the
// pairing keys are sealed under a passphrase the user types here: never a key file beside the
// data (docs/SECURITY.md, "Pairing keys at rest"). Shown above the device list until given.
import { useState } from 'preact/hooks';
import { useApp, useController, useT } from '../context';
import { Notice } from '../common';

export function KeyStorePassphrase() {
  const t = useT();
  const c = useController();
  const need = useApp((s) => s.keyStore);
  const [passphrase, setPassphrase] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  if (need === 'none') return null;
  const create = need === 'create';
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const ok = await c.unlockKeyStore(passphrase, create ? again : null);
    setBusy(false);
    if (ok) {
      setPassphrase('');
      setAgain('');
    }
  };
  return (
    <section class="card key-store" aria-labelledby="key-store-title" data-testid="key-store">
      <h2 id="key-store-title" class="card-title">
        {t(create ? 'keyStore.createTitle' : 'keyStore.unlockTitle')}
      </h2>
      <p>{t(create ? 'keyStore.createLead' : 'keyStore.unlockLead')}</p>
      <form onSubmit={submit}>
        <label>
          {t('keyStore.passphrase')}
          <input
            type="password"
            autoComplete={create ? 'new-password' : 'current-password'}
            value={passphrase}
            minLength={create ? 8 : undefined}
            required
            onInput={(e) => setPassphrase((e.target as HTMLInputElement).value)}
            data-testid="key-store-passphrase"
          />
        </label>
        {create && (
          <label>
            {t('keyStore.again')}
            <input
              type="password"
              autoComplete="new-password"
              value={again}
              required
              onInput={(e) => setAgain((e.target as HTMLInputElement).value)}
              data-testid="key-store-again"
            />
          </label>
        )}
        <div class="actions">
          <button type="submit" class="btn btn-primary" disabled={busy} data-testid="key-store-submit">
            {t(create ? 'keyStore.create' : 'keyStore.unlock')}
          </button>
        </div>
      </form>
      <Notice screen="keyStore" />
    </section>
  );
}
