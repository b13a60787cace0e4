// "Look at your PIN pad": what the approval, pairing and login screens show while the device
// has the customer's attention. As in Trezor Suite and Ledger Live, the computer draws a picture
// of the device and says where to look; it never draws a copy of the device's screen, which
// would put two pictures this computer drew side by side (the one to trust is on the device).
import type { ComponentChildren } from 'preact';
import { useT } from './context';
import './device.css';

const KEY_ROWS = 4;
const KEY_COLS = 3;

/** A PIN pad, drawn: a screen that glows (look here) and a keypad whose OK and Cancel keys are coloured. */
export function PinPadIllustration() {
  const keys = [];
  for (let r = 0; r < KEY_ROWS; r++) {
    for (let c = 0; c < KEY_COLS; c++) {
      // Bottom row: clear, 0, OK (as on the device).
      const cls = r === KEY_ROWS - 1 && c === 2 ? 'ill-key ill-ok' : r === KEY_ROWS - 1 && c === 0 ? 'ill-key ill-clear' : 'ill-key';
      keys.push(<rect key={`${r}-${c}`} class={cls} x={14 + c * 32} y={104 + r * 24} width={26} height={18} rx={4} />);
    }
  }
  return (
    <svg class="pinpad-illustration" viewBox="0 0 124 230" width="93" height="172" aria-hidden="true" focusable="false">
      <rect class="ill-body" x={2} y={2} width={120} height={226} rx={16} />
      <rect class="ill-screen" x={12} y={14} width={100} height={78} rx={6} />
      <rect class="ill-line" x={22} y={28} width={64} height={7} rx={3} />
      <rect class="ill-line" x={22} y={44} width={80} height={7} rx={3} />
      <rect class="ill-line" x={22} y={60} width={52} height={7} rx={3} />
      {keys}
      <rect class="ill-key ill-cancel" x={14} y={202} width={90} height={16} rx={4} />
    </svg>
  );
}

/** The "look at your PIN pad" block: the illustration, a headline, the screen's own words, and whatever the step adds. */
export function LookAtDevice({ title, children }: { title?: string; children?: ComponentChildren }) {
  const t = useT();
  return (
    <div class="look-at" data-testid="look-at-device">
      <PinPadIllustration />
      <div class="look-at-text">
        <p class="look-at-title">{title ?? t('device.lookAt')}</p>
        {children}
        <p class="muted small">{t('device.lookAtTrust')}</p>
      </div>
    </div>
  );
}
