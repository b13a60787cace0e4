import { formatTime } from '../../format';
import { logLine } from '../../words';
import { Notice } from '../common';
import { useApp, useController, useT } from '../context';

/** Offer text as a file download (Blob URL: allowed under the strict CSP). */
function download(fileName: string, content: string): void {
  const url = URL.createObjectURL(new Blob([content], { type: 'text/plain;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function LogsScreen() {
  const t = useT();
  const c = useController();
  const logs = useApp((s) => s.logs);
  const lang = useApp((s) => s.lang);
  return (
    <>
      <h1 tabIndex={-1}>{t('logs.title')}</h1>
      <p class="lead">{t('logs.lead')}</p>
      <div class="actions">
        <button type="button" class="btn" onClick={() => void c.refreshLogs()}>
          {t('common.refresh')}
        </button>
        <button
          type="button"
          class="btn btn-primary"
          data-testid="logs-export"
          onClick={() =>
            void c.exportLogs().then((f) => {
              if (f) download(f.fileName, f.content);
            })
          }
        >
          {t('logs.export')}
        </button>
      </div>
      <Notice screen="logs" />
      {logs.length === 0 ? (
        <p class="empty">{t('logs.none')}</p>
      ) : (
        <div class="table-wrap" tabIndex={0} aria-label={t('logs.tableLabel')}>
          <table class="table logs">
            <caption class="sr-only">{t('logs.tableLabel')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('logs.time')}</th>
                <th scope="col">{t('logs.level')}</th>
                <th scope="col">{t('logs.source')}</th>
                <th scope="col">{t('logs.message')}</th>
              </tr>
            </thead>
            <tbody>
              {[...logs].reverse().map((e) => (
                <tr key={e.seq} class={`lvl-${e.level}`}>
                  <td>
                    <time dateTime={e.time}>{formatTime(e.time, lang)}</time>
                  </td>
                  <td>{t(`level.${e.level}`)}</td>
                  <td>{t(`source.${e.source}`)}</td>
                  <td class="msg">{logLine(lang, e)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
