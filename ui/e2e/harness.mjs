// Browser end-to-end harness: serves ui/dist on 127.0.0.1 with the app's strict CSP header and
// drives Debian's Chromium through playwright-core (no downloaded browser).
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const UI = resolve(here, '..');
export const DIST = join(UI, 'dist');
export const SHOTS = join(UI, 'test-results', 'screenshots');

export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
  "connect-src 'self' ipc: http://ipc.localhost; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon' };

export async function serveDist() {
  if (!existsSync(join(DIST, 'index.html'))) throw new Error(`no build at ${DIST}: run npm run build first`);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let file = normalize(join(DIST, path === '/' ? 'index.html' : path));
    if (!file.startsWith(DIST) || !existsSync(file) || statSync(file).isDirectory()) file = join(DIST, 'index.html');
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Security-Policy': CSP,
      'Cache-Control': 'no-store',
    });
    createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(r)) };
}

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/**
 * A fresh app (fresh MockBackend: one bound mock device, nothing paired) in the given language.
 * Collects console errors and CSP violations; `problems()` returns them.
 */
export async function openApp(browser, base, { lang = 'en', route = 'devices', stepMs = 20, customer = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: lang, reducedMotion: 'reduce' });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  // `customer`: a customer's first start (no staff mode, the guided first run).
  await page.goto(`${base}?mockStepMs=${stepMs}${customer ? '&customer' : ''}#/${route}`);
  await page.waitForSelector('#app[data-ready="true"]');
  if ((await page.locator('html').getAttribute('lang')) !== lang) {
    await page.getByTestId('lang-switch').selectOption(lang);
    await page.waitForFunction((l) => document.documentElement.lang === l, lang);
  }
  return { page, context, problems: () => problems };
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

export async function go(page, route) {
  await page.getByTestId(`nav-${route}`).click();
  await page.getByTestId(`screen-${route}`).waitFor();
}

/** Press keys on the mock device's on-screen keypad (the side panel or the QA panel). */
export async function press(page, keys) {
  const pad = page.getByTestId('mock-device').first();
  for (const k of keys) await pad.locator(`[data-key="${k}"]`).click();
}

export async function connectFirst(page) {
  await go(page, 'devices');
  await page.getByTestId('connect-PB-SIM-0001').click();
  await page.getByTestId('safety').filter({ hasText: 'PinPad Sim 1' }).waitFor();
}

export async function pair(page) {
  await go(page, 'pairing');
  await page.getByTestId('pairing-start').click();
  const code = (await page.getByTestId('pairing-code').innerText()).trim();
  return code;
}

export async function pairAndLogin(page) {
  await connectFirst(page);
  await pair(page);
  await press(page, ['ok']);
  await page.getByTestId('pairing-done').waitFor();
  await go(page, 'login');
  await page.locator('#login-customer').fill('C-1001');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-done').waitFor();
}

export async function fillPayment(page, { payee = 'Zhang San', account = '6222 0800 1234 8888', amount = '120.50' } = {}) {
  await go(page, 'payment');
  await page.locator('#pay-payee').fill(payee);
  await page.locator('#pay-account').fill(account);
  await page.locator('#pay-amount').fill(amount);
  await page.locator('#pay-ref').fill('Rent March');
}
