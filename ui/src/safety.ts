// What the header and the payment form know for sure, from the core's events only (devices,
// deviceLink, the login): no sampling, and "unknown" where nothing says otherwise. Issue 17
// item 3: the header showed a green "Safe" light beside "not connected", and a tampered
// device was offered the payment form.
import type { ErrorKind } from './api/errors';
import type { DeviceStatus } from './api/types';
import type { MessageKey } from './i18n';
import { activeDevice, type State } from './state';

/** Why the payment form is closed, with the screen (or the bank) that fixes it. */
export type PaymentBlockReason = 'loggedOut' | 'disconnected' | 'reconnecting' | 'tampered' | 'revoked' | 'locked' | 'unpaired';

export interface PaymentBlock {
  reason: PaymentBlockReason;
  /** The route whose action fixes it; null: only the bank can (tampered, revoked). */
  fix: 'login' | 'devices' | 'pairing' | null;
}

/** The route whose action fixes each block; null: only the bank can, or it passes by itself. */
export const BLOCK_FIX: Record<PaymentBlockReason, PaymentBlock['fix']> = {
  loggedOut: 'login',
  disconnected: 'devices',
  reconnecting: null,
  tampered: null,
  revoked: null,
  locked: 'login',
  unpaired: 'pairing',
};

/** The error kind each block is, where the controller refuses a payment the form would not offer. */
export const BLOCK_KIND: Record<PaymentBlockReason, ErrorKind> = {
  loggedOut: 'notLoggedIn',
  disconnected: 'deviceDisconnected',
  reconnecting: 'deviceDisconnected',
  tampered: 'tampered',
  revoked: 'revoked',
  locked: 'locked',
  unpaired: 'notPaired',
};

const block = (reason: PaymentBlockReason): PaymentBlock => ({ reason, fix: BLOCK_FIX[reason] });

/** The device the customer session runs on, as last reported. */
export function sessionDevice(s: Pick<State, 'session' | 'devices'>): DeviceStatus | null {
  if (!s.session) return null;
  return s.devices.find((d) => d.deviceId === s.session!.deviceId) ?? null;
}

/**
 * Whether a payment may be started now; checked in the order that matters for safety (a
 * tampered device is named as tampered even when it is also logged out or disconnected).
 * The core refuses the same before any bank call (companion `app::guard`).
 */
export function paymentBlock(s: Pick<State, 'session' | 'devices' | 'links' | 'activeDeviceId'>): PaymentBlock | null {
  const dev = sessionDevice(s);
  // Logged out, the device in hand still counts: "log in" is no fix for a tampered one.
  const inHand = dev ?? activeDevice(s);
  if (inHand?.tamper === 'tampered') return block('tampered');
  if (inHand?.lifecycle === 'revoked') return block('revoked');
  if (!s.session) return block('loggedOut');
  if (!dev) return block('disconnected');
  if (dev.lock === 'locked') return block('locked');
  if (!dev.paired) return block('unpaired');
  if (s.links[dev.deviceId]?.link === 'reconnecting') return block('reconnecting');
  if (!dev.connected) return block('disconnected');
  return null;
}

/** One header fact: its tone (grey `unknown` when nothing is known) and its words. */
export interface HeaderFact {
  tone: 'safe' | 'warn' | 'danger' | 'unknown';
  text: MessageKey;
  /** What its tooltip says (and `{reason}` in it: the core's words for why). */
  tip?: MessageKey;
  reason?: string;
}

/** The link to the active device: live while connected, unknown otherwise. */
export function linkFact(dev: DeviceStatus | null, links: State['links']): HeaderFact {
  if (!dev) return { tone: 'unknown', text: 'header.link.none' };
  const link = links[dev.deviceId]?.link;
  if (link === 'reconnecting') return { tone: 'warn', text: 'header.link.reconnecting' };
  if (!dev.connected) return { tone: 'unknown', text: 'header.link.none' };
  return { tone: 'safe', text: 'header.link.up' };
}

/** The customer session: logged in (through which device) or not, the same on every screen. */
export function sessionFact(s: Pick<State, 'session'>): HeaderFact {
  return s.session ? { tone: 'safe', text: 'header.session.in' } : { tone: 'unknown', text: 'header.session.out' };
}

/**
 * The bank: live from the core's bankReach events (a call that reached it or failed on the
 * way, the probe at start and after an address change), grey until one says. Issue 17 item 3:
 * it said "configured" from the settings alone, green while every call failed.
 */
export function bankFact(s: Pick<State, 'info' | 'bankReach'>): HeaderFact {
  const info = s.info;
  if (info?.bankProfile && info.bankProfile.status !== 'loaded' && !info.embedded) return { tone: 'warn', text: 'header.bank.none' };
  switch (s.bankReach.reach) {
    case 'reachable':
      return { tone: 'safe', text: info?.embedded ? 'header.bank.sandboxReachable' : 'header.bank.reachable', tip: 'header.bank.reachableTip' };
    case 'unreachable':
      return { tone: 'warn', text: 'header.bank.unreachable', tip: 'header.bank.unreachableTip', reason: s.bankReach.reason ?? '' };
    default:
      return { tone: 'unknown', text: 'header.bank.unknown', tip: 'header.bank.unknownTip' };
  }
}
