// Screenshots of a customer screen in every variant a customer can see it in: both languages,
// light and dark, at the window's minimum size and a large one. Named
// <screen>_<lang>_<theme>_<size>.png (deterministic, so a new run overwrites the old files and
// git shows what changed); scripts/app-e2e.sh shrinks them with pngquant afterwards.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LANGS = ['en', 'zh-CN'];
export const THEMES = ['light', 'dark'];
/** tauri.conf.json's minWidth x minHeight, and a large desktop window. */
export const SIZES = { min: [820, 600], large: [1440, 900] };
/** tauri.conf.json's default window, restored after each set. */
const DEFAULT_SIZE = [1200, 820];

async function setSize(session, [width, height]) {
  await session.cmd('POST', '/window/rect', { width, height });
  // No window manager under Xvfb: the window takes the size as asked (no decorations).
  await session.waitFor(`a ${width}x${height} window`, () =>
    session.exec(`return window.innerWidth === ${width} && window.innerHeight === ${height} || null;`),
  );
}

async function setLanguage(session, lang) {
  const current = await session.exec('return document.documentElement.lang;');
  if (current === lang) return;
  await session.click(await session.find(`[data-testid="lang-switch"] option[value="${lang}"]`));
  await session.waitFor(`the ${lang} language`, () => session.exec(`return document.documentElement.lang === '${lang}' || null;`));
}

/** The page as the customer sees it: no focus ring left on the language switch, layout settled. */
async function settle(session) {
  await session.execAsync(`
    document.activeElement?.blur?.();
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return true;`);
}

/**
 * Takes `screen` in all eight variants into `dir`, then puts the window back as it was (default
 * size, the language it had, light theme unless it was dark).
 */
export async function shotMatrix(session, dir, screen) {
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const lang0 = await session.exec('return document.documentElement.lang;');
  const theme0 = await session.exec('return document.documentElement.dataset.theme ?? "light";');
  try {
    for (const [size, rect] of Object.entries(SIZES)) {
      await setSize(session, rect);
      for (const lang of LANGS) {
        await setLanguage(session, lang);
        for (const theme of THEMES) {
          await session.exec(`document.documentElement.dataset.theme = '${theme}'; return true;`);
          await settle(session);
          writeFileSync(join(dir, `${screen}_${lang}_${theme}_${size}.png`), await session.screenshot());
        }
      }
    }
  } finally {
    await session.exec(`document.documentElement.dataset.theme = '${theme0}'; return true;`);
    await setLanguage(session, lang0);
    await setSize(session, DEFAULT_SIZE);
  }
}
