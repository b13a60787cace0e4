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
 * What is wrong with the layout as the customer sees it now, in words (empty: nothing): the
 * window scrolls sideways, the menu (a row below 901 px) takes a second row or hides an item,
 * or one of `mustSee` (CSS selectors) is not wholly inside the window.
 */
async function layoutProblems(session, mustSee) {
  return session.exec(
    `const problems = [];
    const page = document.documentElement;
    if (page.scrollWidth > window.innerWidth + 1) problems.push('the page is ' + page.scrollWidth + ' px wide in a ' + window.innerWidth + ' px window');
    const ul = document.querySelector('nav.nav ul');
    if (ul && getComputedStyle(ul).flexDirection === 'row' && getComputedStyle(ul).display === 'flex') {
      const rows = new Set([...ul.children].map((li) => Math.round(li.getBoundingClientRect().top)));
      if (rows.size > 1) problems.push('the menu takes ' + rows.size + ' rows');
      if (ul.scrollWidth > ul.clientWidth + 1) problems.push('the menu hides ' + (ul.scrollWidth - ul.clientWidth) + ' px of its items');
    }
    for (const css of arguments[0]) {
      const el = document.querySelector(css);
      const r = el?.getBoundingClientRect();
      if (!r || r.width === 0 || r.top < 0 || r.bottom > window.innerHeight || r.left < 0 || r.right > window.innerWidth) {
        problems.push(css + (r ? ' is outside the window (' + Math.round(r.top) + '..' + Math.round(r.bottom) + ' of ' + window.innerHeight + ')' : ' is missing'));
      }
    }
    return problems;`,
    [mustSee],
  );
}

/**
 * Takes `screen` in all eight variants into `dir`, then puts the window back as it was (default
 * size, the language it had, light theme unless it was dark). Every variant's layout is checked
 * too (see layoutProblems; `mustSee` at the minimum size only, where the fold is): a problem
 * fails the call after all eight files are written, so the pictures of it can be looked at.
 */
export async function shotMatrix(session, dir, screen, { mustSee = [] } = {}) {
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const lang0 = await session.exec('return document.documentElement.lang;');
  const theme0 = await session.exec('return document.documentElement.dataset.theme ?? "light";');
  const problems = [];
  try {
    for (const [size, rect] of Object.entries(SIZES)) {
      await setSize(session, rect);
      for (const lang of LANGS) {
        await setLanguage(session, lang);
        for (const theme of THEMES) {
          await session.exec(`document.documentElement.dataset.theme = '${theme}'; return true;`);
          await settle(session);
          const name = `${screen}_${lang}_${theme}_${size}`;
          writeFileSync(join(dir, `${name}.png`), await session.screenshot());
          for (const p of await layoutProblems(session, size === 'min' ? mustSee : [])) problems.push(`${name}: ${p}`);
        }
      }
    }
  } finally {
    await session.exec(`document.documentElement.dataset.theme = '${theme0}'; return true;`);
    await setLanguage(session, lang0);
    await setSize(session, DEFAULT_SIZE);
  }
  if (problems.length) throw new Error(`layout of ${screen}:\n  ${problems.join('\n  ')}`);
}
