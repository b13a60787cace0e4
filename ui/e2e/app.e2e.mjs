// Browser end-to-end tests of the built UI against the MockBackend (mocked IPC), in Debian's
// Chromium. Run: npm run build && npm run e2e. Screenshots land in test-results/screenshots/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectFirst, fillPayment, go, launch, openApp, pair, pairAndLogin, press, serveDist, shot } from './harness.mjs';

const T = { timeout: 60_000 };
let server;
let browser;

before(async () => {
  server = await serveDist();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** Run a test body on a fresh app and fail on any console error or CSP violation. */
async function withApp(opts, body) {
  const app = await openApp(browser, server.url, opts);
  try {
    await body(app.page);
    assert.deepEqual(app.problems(), [], 'console errors or CSP violations');
  } finally {
    await app.context.close();
  }
}

describe('customer flows (en)', () => {
  test('pairing: the code on screen matches the device display; OK on the device pairs', T, () =>
    withApp({}, async (page) => {
      await connectFirst(page);
      const code = await pair(page);
      assert.match(code, /^\d{3} \d{3}$/);
      const display = page.getByTestId('device-display').first();
      await display.filter({ hasText: code }).waitFor();
      await press(page, ['ok']);
      await page.getByTestId('pairing-done').waitFor();
      await go(page, 'devices');
      const card = page.getByTestId('device-PB-SIM-0001');
      assert.match(await card.innerText(), /Paired with this computer\s*Yes/);
    }));

  test('pairing refused on the device is explained in plain words', T, () =>
    withApp({}, async (page) => {
      await connectFirst(page);
      await pair(page);
      await press(page, ['cancel']);
      // The customer's own cancel is a neutral status, not a red alert (issue 17).
      const box = page.getByRole('status').filter({ hasText: 'Cancelled.' });
      await box.waitFor();
      assert.equal(await box.getAttribute('data-tone'), 'neutral');
      assert.match(await box.innerText(), /Nothing was sent/);
    }));

  test('login with the paired device', T, () =>
    withApp({}, async (page) => {
      await pairAndLogin(page);
      assert.match(await page.getByTestId('login-done').innerText(), /Welcome, Li Wei/);
      assert.equal(await page.getByTestId('safety').getAttribute('data-tone'), 'safe');
    }));

  test('payment approved: dots follow the device keypad, result is green SAFE as the device decided', T, () =>
    withApp({}, async (page) => {
      await pairAndLogin(page);
      await fillPayment(page);
      await page.getByTestId('payment-review-btn').click();
      const review = await page.getByTestId('payment-review').innerText();
      assert.match(review, /Zhang San/);
      assert.match(review, /120\.50/);
      await page.getByTestId('payment-send').click();
      await page.getByRole('heading', { name: 'Approve on your device' }).waitFor();
      const main = page.locator('main');
      // The customer screen points at the device; the device (the mock pad beside it) shows the payment.
      await main.getByTestId('look-at-device').waitFor();
      assert.equal(await main.getByTestId('device-display').count(), 0, 'a mirrored device screen');
      await page.getByTestId('mock-device').getByTestId('device-display').filter({ hasText: 'To Zhang San' }).waitFor();
      await press(page, ['1', '2', '3']);
      await page.getByTestId('pin-dots').filter({ hasText: '●●●○○○' }).waitFor();
      assert.match(await main.innerText(), /3 of 6 PIN digits entered on the device/);
      await press(page, ['4', '5', '6', 'ok']);
      const decision = page.getByTestId('decision');
      await decision.waitFor();
      assert.equal(await decision.getAttribute('data-tone'), 'safe');
      const text = await decision.innerText();
      assert.match(text, /Payment approved/);
      assert.match(text, /Device light:\s*Safe/i);
      // The PIN typed on the device never shows up anywhere on the page.
      assert.ok(!(await page.locator('body').innerText()).includes('123456'));
      await shot(page, 'en-payment-result-safe');
    }));

  test('payment where the device says DANGER (bank answer fails the device check)', T, () =>
    withApp({}, async (page) => {
      await pairAndLogin(page);
      await go(page, 'qa');
      await page.getByTestId('fault-corrupt').click();
      await fillPayment(page, { payee: 'Mallory', amount: '999' });
      await page.getByTestId('payment-review-btn').click();
      await page.getByTestId('payment-send').click();
      await press(page, ['1', '2', '3', '4', '5', '6', 'ok']);
      const decision = page.getByTestId('decision');
      await decision.waitFor();
      assert.equal(await decision.getAttribute('data-tone'), 'danger');
      const text = await decision.innerText();
      assert.match(text, /Payment refused by your device/);
      assert.match(text, /did not pass the device’s check/);
      assert.equal(await page.getByTestId('safety').getAttribute('data-tone'), 'danger');
      await shot(page, 'en-payment-result-danger');
    }));

  test('wrong PIN: declined by the bank, the device stays safe', T, () =>
    withApp({}, async (page) => {
      await pairAndLogin(page);
      await fillPayment(page);
      await page.getByTestId('payment-review-btn').click();
      await page.getByTestId('payment-send').click();
      await press(page, ['9', '9', '9', '9', '9', '9', 'ok']);
      const decision = page.getByTestId('decision');
      await decision.waitFor();
      assert.match(await decision.innerText(), /Payment declined[\s\S]*did not accept the PIN/);
    }));

  test('payment form explains bad input next to the field', T, () =>
    withApp({}, async (page) => {
      await pairAndLogin(page);
      await go(page, 'payment');
      await page.locator('#pay-amount').fill('12.345');
      await page.getByTestId('payment-review-btn').click();
      assert.equal(await page.locator('#pay-amount').getAttribute('aria-invalid'), 'true');
      assert.match(await page.locator('#pay-amount-error').innerText(), /at most two decimals/);
      assert.match(await page.locator('#pay-payee-error').innerText(), /who you are paying/);
    }));

  test('out-of-band confirmation signed on the device', T, () =>
    withApp({}, async (page) => {
      await pairAndLogin(page);
      await go(page, 'confirmations');
      await page.getByTestId('request-ORD-7731').getByRole('button').click();
      await page.getByTestId('mock-device').getByTestId('device-display').filter({ hasText: 'Confirm payment' }).waitFor();
      await press(page, ['ok']);
      const decision = page.getByTestId('decision');
      await decision.waitFor();
      assert.match(await decision.innerText(), /Confirmed and signed/);
      await page.getByTestId('confirm-close').click();
      await page.getByText('Nothing to confirm.').waitFor();
    }));
});

describe('staff and QA (en)', () => {
  test('operator tamper reset after the tamper switch trips', T, () =>
    withApp({}, async (page) => {
      await connectFirst(page);
      await go(page, 'qa');
      await page.getByTestId('qa-tamper').click();
      await page.getByTestId('safety').and(page.locator('[data-tone="danger"]')).waitFor();
      assert.match(await page.getByTestId('safety').innerText(), /TAMPERED/);
      await go(page, 'staff');
      // A clerk may not reset; an operator may.
      await page.locator('#staff-id').fill('clerk-01');
      await page.locator('#staff-pw').fill('wrong');
      await page.getByTestId('staff-signin').click();
      await page.getByRole('alert').filter({ hasText: 'Staff ID or password not accepted.' }).waitFor();
      await page.locator('#staff-id').fill('op-01');
      await page.locator('#staff-pw').fill('operator-pass');
      await page.getByTestId('staff-signin').click();
      await page.getByTestId('staff-tamper-reset').click();
      // Asked first, naming the PIN pad and its customer.
      assert.match(await page.getByTestId('staff-confirm').innerText(), /PB-SIM-0001[\s\S]*C-1001/);
      await page.getByTestId('staff-confirm-yes').click();
      await page.getByTestId('staff-result').filter({ hasText: 'Tamper state reset' }).waitFor();
      assert.match(await page.getByTestId('staff-device-state').innerText(), /New \(not initialised\)[\s\S]*Not tampered/);
      assert.notEqual(await page.getByTestId('safety').getAttribute('data-tone'), 'danger');
      // An operator is offered no initialise (the bank refuses it); a clerk initialises again.
      assert.equal(await page.getByTestId('staff-initialise').count(), 0);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.locator('#staff-id').fill('clerk-01');
      await page.locator('#staff-pw').fill('clerk-pass');
      await page.getByTestId('staff-signin').click();
      await page.getByTestId('staff-initialise').click();
      await page.getByTestId('staff-result').filter({ hasText: 'Device initialised' }).waitFor();
    }));

  test('QA keypad: keys go to the mock device, the log never names a digit', T, () =>
    withApp({}, async (page) => {
      await go(page, 'qa');
      await page.locator('#qa-name').fill('QA Pad');
      await page.getByTestId('qa-start').click();
      const row = page.getByRole('row', { name: /QA Pad/ });
      await row.getByRole('button', { name: 'Connect' }).click();
      await row.getByRole('radio').check();
      await page.getByTestId('mock-device').filter({ hasText: 'PB-SIM-0002' }).waitFor();
      // Idle, the pad takes no key (a real one discards them): its keys are off.
      assert.ok(await page.getByTestId('mock-device').first().locator('[data-key="7"]').isDisabled());
      // A fault armed from QA shows up as a plain-words error in the flow it hits.
      await page.getByTestId('fault-busy').click();
      await go(page, 'pairing');
      await page.getByTestId('pairing-start').click();
      await page.getByRole('alert').filter({ hasText: 'The device is busy with another request.' }).waitFor();
      // With a prompt up (a pairing code), the keys go to the device.
      await page.getByTestId('pairing-start').click();
      await page.getByTestId('pairing-code').waitFor();
      await press(page, ['7', 'cancel']);
      await page.getByRole('status').filter({ hasText: 'Cancelled.' }).waitFor();
      await go(page, 'qa');
      const log = page.getByTestId('qa-log');
      await log.filter({ hasText: 'PB-SIM-0002: key pressed (CANCEL)' }).waitFor();
      const text = await log.innerText();
      assert.match(text, /PB-SIM-0002: key pressed \(a digit\)/);
      assert.ok(!/key pressed \(7\)/.test(text));
    }));

  test('logs export is redacted', T, () =>
    withApp({}, async (page) => {
      await pairAndLogin(page);
      await go(page, 'logs');
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('logs-export').click()]);
      const path = await download.path();
      const { readFile } = await import('node:fs/promises');
      const text = await readFile(path, 'utf8');
      assert.match(text, /Session opened for C-1001/);
      assert.match(text, /\[redacted\]/);
      assert.ok(!/\b(?=[0-9A-Za-z]*[0-9])[0-9A-Za-z]{16,}\b/.test(text), 'no key-like token left in the export');
      await page.getByRole('status').filter({ hasText: /items were redacted/ }).waitFor();
    }));
});

describe('accessibility and languages', () => {
  test('keyboard: skip link first, then focus lands on the screen heading; every control is labelled', T, () =>
    withApp({}, async (page) => {
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1');
      for (const route of ['devices', 'pairing', 'login', 'payment', 'confirmations', 'staff', 'qa', 'logs', 'settings']) {
        await go(page, route);
        const unlabelled = await page.evaluate(() => {
          const bad = [];
          for (const el of document.querySelectorAll('button, input, select, textarea, a[href]')) {
            const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
            const labelled = el.labels?.length > 0 || el.getAttribute('aria-labelledby') || name.length > 0;
            if (!labelled && el.getAttribute('type') !== 'hidden') bad.push(el.outerHTML.slice(0, 80));
          }
          return bad;
        });
        assert.deepEqual(unlabelled, [], `unlabelled controls on ${route}`);
      }
    }));

  test('keyboard only: connect, pair and confirm on the mock keypad with Tab and Enter', T, () =>
    withApp({}, async (page) => {
      /** Press Tab until the focused element matches, as a keyboard user would. */
      const tabTo = async (selector) => {
        for (let i = 0; i < 60; i++) {
          await page.keyboard.press('Tab');
          if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
        }
        throw new Error(`Tab never reached ${selector}`);
      };
      await tabTo('[data-testid="connect-PB-SIM-0001"]');
      await page.keyboard.press('Enter');
      await page.getByTestId('safety').filter({ hasText: 'PinPad Sim 1' }).waitFor();
      await tabTo('[data-testid="nav-pairing"]');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.activeElement?.tagName === 'H1' && document.activeElement.textContent === 'Pair a device');
      await tabTo('[data-testid="pairing-start"]');
      await page.keyboard.press('Enter');
      await page.getByTestId('pairing-code').waitFor();
      await tabTo('[data-key="ok"]');
      await page.keyboard.press('Enter');
      await page.getByTestId('pairing-done').waitFor();
    }));

  test('language switches at run time without reload', T, () =>
    withApp({}, async (page) => {
      await page.getByRole('heading', { name: 'Devices' }).waitFor();
      await page.getByTestId('lang-switch').selectOption('zh-CN');
      await page.getByRole('heading', { name: '设备' }).waitFor();
      assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
      await page.getByTestId('lang-switch').selectOption('en');
      await page.getByRole('heading', { name: 'Devices' }).waitFor();
    }));

  for (const lang of ['en', 'zh-CN']) {
    test(`screenshots of every screen (${lang})`, { timeout: 120_000 }, () =>
      withApp({ lang }, async (page) => {
        await shot(page, `${lang}-01-devices-start`);
        await connectFirst(page);
        await shot(page, `${lang}-02-devices`);
        await pair(page);
        await shot(page, `${lang}-03-pairing-compare`);
        await press(page, ['ok']);
        await page.getByTestId('pairing-done').waitFor();
        await shot(page, `${lang}-04-pairing-done`);
        await go(page, 'login');
        await page.locator('#login-customer').fill('C-1001');
        await shot(page, `${lang}-05-login`);
        await page.getByTestId('login-submit').click();
        await page.getByTestId('login-done').waitFor();
        await shot(page, `${lang}-06-login-done`);
        await fillPayment(page);
        await shot(page, `${lang}-07-payment-form`);
        await page.getByTestId('payment-review-btn').click();
        await page.getByTestId('payment-review').waitFor();
        await shot(page, `${lang}-08-payment-review`);
        await page.getByTestId('payment-send').click();
        await press(page, ['1', '2', '3', '4']);
        await page.getByTestId('pin-dots').filter({ hasText: '●●●●○○' }).waitFor();
        await shot(page, `${lang}-09-payment-approve-on-device`);
        await press(page, ['5', '6', 'ok']);
        await page.getByTestId('decision').waitFor();
        await shot(page, `${lang}-10-payment-result-safe`);
        await page.getByTestId('payment-new').click();
        await go(page, 'qa');
        await page.getByTestId('fault-corrupt').click();
        await fillPayment(page, { payee: 'Mallory', amount: '999' });
        await page.getByTestId('payment-review-btn').click();
        await page.getByTestId('payment-send').click();
        await press(page, ['1', '2', '3', '4', '5', '6', 'ok']);
        await page.getByTestId('decision').and(page.locator('[data-tone="danger"]')).waitFor();
        await shot(page, `${lang}-11-payment-result-danger`);
        await go(page, 'confirmations');
        await shot(page, `${lang}-12-confirmations`);
        await page.getByTestId('request-ORD-7731').getByRole('button').click();
        await page.getByTestId('mock-device').getByTestId('device-display').filter({ hasText: 'Confirm payment' }).waitFor();
        await shot(page, `${lang}-13-confirmation-on-device`);
        await press(page, ['ok']);
        await page.getByTestId('decision').waitFor();
        await go(page, 'staff');
        await shot(page, `${lang}-14-staff-sign-in`);
        await page.locator('#staff-id').fill('op-01');
        await page.locator('#staff-pw').fill('operator-pass');
        await page.getByTestId('staff-signin').click();
        await page.getByTestId('staff-device').waitFor();
        await shot(page, `${lang}-15-staff`);
        await go(page, 'qa');
        await page.getByTestId('qa-tamper').click();
        await shot(page, `${lang}-16-qa`);
        await go(page, 'logs');
        await shot(page, `${lang}-17-logs`);
        await go(page, 'settings');
        await shot(page, `${lang}-18-settings`);
        await page.locator('#set-theme').selectOption('dark');
        await page.getByTestId('settings-save').click();
        await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
        await shot(page, `${lang}-18b-settings-dark`);
        await go(page, 'devices');
        await shot(page, `${lang}-19-devices-tampered`);
      }));
  }
});

describe('first run, history and staff mode (issue 17 item 5)', () => {
  for (const lang of ['en', 'zh-CN']) {
    test(`first run, then the payment history and a receipt (${lang})`, T, () =>
      withApp({ lang, customer: true }, async (page) => {
        // A customer's menu: no Staff, no QA.
        assert.equal(await page.getByTestId('nav-staff').count(), 0);
        assert.equal(await page.getByTestId('nav-qa').count(), 0);
        const step = (s) => page.locator(`[data-testid="first-run"][data-step="${s}"]`).waitFor();
        await step('connect');
        await shot(page, `${lang}-30-first-run-connect`);
        await page.getByTestId('first-run-connect-PB-SIM-0001').click();
        await step('pair');
        await page.getByTestId('first-run-pair').click();
        await page.getByTestId('first-run-code').waitFor();
        await shot(page, `${lang}-31-first-run-pair`);
        await press(page, ['ok']);
        await step('login');
        await page.locator('#first-run-customer').fill('C-1001');
        await page.getByTestId('first-run-login').click();
        await step('done');
        await shot(page, `${lang}-32-first-run-done`);
        await page.getByTestId('first-run-finish').click();
        await page.getByTestId('screen-payment').waitFor();
        await fillPayment(page);
        await page.getByTestId('payment-review-btn').click();
        await page.getByTestId('payment-send').click();
        await press(page, ['1', '2', '3', '4', '5', '6', 'ok']);
        await page.getByTestId('decision').waitFor();
        await go(page, 'history');
        const row = page.locator('[data-testid^="history-row-"]').first();
        await row.waitFor();
        assert.match(await row.innerText(), /CNY 120\.50/);
        assert.match(await row.innerText(), /•••• 8888/);
        await shot(page, `${lang}-33-history`);
        await row.locator('[data-testid^="receipt-open-"]').click();
        await page.getByTestId('receipt').waitFor();
        await shot(page, `${lang}-34-receipt`);
        await page.emulateMedia({ colorScheme: 'dark' });
        await go(page, 'settings');
        await page.locator('#set-theme').selectOption('dark');
        await page.getByTestId('settings-save').click();
        await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
        await go(page, 'history');
        await page.locator('[data-testid^="history-row-"]').first().waitFor();
        await shot(page, `${lang}-35-history-dark`);
      }));
  }
});
