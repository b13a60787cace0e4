// GENERATED from the Rust types of companion::app by src-tauri/tests/contract.rs (ts-rs).
// Do not edit: change the Rust type, then run
// PINBRIDGE_UPDATE_CONTRACT=1 cargo test -p pinbridge-app --test contract

export type TransportName = "usb" | "ble" | "sim";

export type Lifecycle = "manufactured" | "initialised" | "bound" | "revoked";

export type TamperState = "clear" | "tampered";

export type LockState = "unlocked" | "locked";

export type Indicator = "off" | "safe" | "danger";

export type Firmware = { 
/**
 * Version text.
 */
version: string, 
/**
 * Hex SHA-256 of the image.
 */
hash: string, };

export type Genuine = "unchecked" | "genuine" | "notGenuine" | "notVerified";

export type DeviceStatus = { 
/**
 * `usb:1-4.2`, `sim:127.0.0.1:7001`: the id commands take.
 */
deviceId: string, 
/**
 * Display name.
 */
name: string, 
/**
 * Transport.
 */
transport: TransportName, 
/**
 * Serial number; empty until the device has told it.
 */
serial: string, 
/**
 * This app has a session open to it.
 */
connected: boolean, 
/**
 * As reported by the device.
 */
lifecycle: Lifecycle, 
/**
 * As reported by the device.
 */
tamper: TamperState, 
/**
 * As reported by the device.
 */
lock: LockState, 
/**
 * As reported by the device.
 */
indicator: Indicator, 
/**
 * This app holds a pairing key for it.
 */
paired: boolean, 
/**
 * The customer it is bound to at the bank.
 */
customerId: string | null, 
/**
 * As reported by the device.
 */
firmware: Firmware, 
/**
 * The genuine check made when this app connected.
 */
genuine: Genuine, 
/**
 * Each check that failed, in words naming it (empty unless `NotGenuine`).
 */
genuineFailures: Array<string>, 
/**
 * A software PIN pad whose keypad QA can drive.
 */
mock: boolean, };

export type Stage = "contactingBank" | "sendingToDevice" | "waitingForUser" | "sendingToBank" | "verifyingResponse" | "done";

export type DeviceProgress = { "type": "stage", 
/**
 * Which.
 */
stage: Stage, } | { "type": "display", 
/**
 * Lines.
 */
lines: Array<string>, } | { "type": "pin", 
/**
 * Digits entered.
 */
entered: number, 
/**
 * Most digits possible.
 */
length: number, } | { "type": "indicator", 
/**
 * As the device reports it.
 */
indicator: Indicator, };

export type ConfirmationRequest = { 
/**
 * The bank's id for this request.
 */
requestId: string, 
/**
 * The merchant's order id.
 */
orderId: string, 
/**
 * The customer's account to pay from.
 */
payerAccount: string, 
/**
 * Who is paid.
 */
payeeName: string, 
/**
 * Their account.
 */
payeeAccount: string, 
/**
 * Integer minor units as a decimal string.
 */
amountMinor: string, 
/**
 * ISO 4217 code.
 */
currency: string, 
/**
 * ISO-8601 time the bank pushed it.
 */
receivedAt: string, };

export type LinkState = "reconnecting" | "reconnected" | "sessionLost";

export type BankCommandKind = "wipe" | "lock" | "unlock" | "forgetHosts" | "endSession";

export type BankReach = "unknown" | "reachable" | "unreachable";

export type CoreEvent = { "type": "devices", 
/**
 * The list.
 */
devices: Array<DeviceStatus>, } | { "type": "deviceDisplay", 
/**
 * The device.
 */
deviceId: string, 
/**
 * Its display, line by line.
 */
lines: Array<string>, 
/**
 * The prompt on the display, if one waits for a key (mock devices; a key press names
 * it so a key never goes to a prompt the user has not seen). `None`: the keypad is
 * idle and a key would be discarded.
 */
promptId: number | null, } | { "type": "confirmationPushed", 
/**
 * The request.
 */
request: ConfirmationRequest, } | { "type": "bankCommand", 
/**
 * The device.
 */
deviceId: string, 
/**
 * Its serial.
 */
serial: string, 
/**
 * What the bank commanded.
 */
command: BankCommandKind, 
/**
 * The device obeyed (its state after it says so); `false`: `message` says why not.
 */
applied: boolean, 
/**
 * The device's lifecycle after it (`revoked` after a wipe); `None`: it did not answer.
 */
lifecycle: Lifecycle | null, 
/**
 * Its lock after it; `None`: it did not answer.
 */
lock: LockState | null, 
/**
 * The customer session on this device ended (the bank ends it for a wipe or lock).
 */
sessionEnded: boolean, 
/**
 * Plain words for the customer: what the bank did and what it means.
 */
message: string, } | { "type": "deviceLink", 
/**
 * The device.
 */
deviceId: string, 
/**
 * What happened.
 */
link: LinkState, 
/**
 * Plain words for the user: what happened and what to do.
 */
message: string, } | { "type": "bankReach", 
/**
 * Reachable, unreachable or unknown.
 */
reach: BankReach, 
/**
 * Why it is unreachable (English, for the tooltip's details); `None` otherwise.
 */
reason: string | null, };

export type PairingStart = { 
/**
 * Names this pairing in `pairing_confirm` / `pairing_cancel`.
 */
pairingId: string, 
/**
 * Six digits, also on the device's display.
 */
code: string, };

export type LoginSession = { 
/**
 * The bank's session id.
 */
sessionId: string, 
/**
 * The customer.
 */
customerId: string, 
/**
 * Their name.
 */
customerName: string, 
/**
 * The device logged in with.
 */
deviceId: string, 
/**
 * Accounts to pay from.
 */
accounts: Array<string>, };

export type LogoutResult = { 
/**
 * The bank revoked the session token.
 */
bankEnded: boolean, 
/**
 * The device dropped its session keys (it said so in its status).
 */
deviceCleared: boolean, 
/**
 * Plain words: what ended where, and what did not.
 */
message: string, };

export type PaymentRequest = { 
/**
 * From `login`.
 */
sessionId: string, 
/**
 * One of the session's accounts.
 */
fromAccount: string, 
/**
 * Payee.
 */
payeeName: string, 
/**
 * Payee account.
 */
payeeAccount: string, 
/**
 * Integer minor units as a decimal string.
 */
amountMinor: string, 
/**
 * ISO 4217.
 */
currency: string, 
/**
 * Free text.
 */
reference: string, };

export type PreparedPayment = { 
/**
 * The bank's transaction id.
 */
paymentId: string, 
/**
 * Payer account.
 */
fromAccount: string, 
/**
 * Payee.
 */
payeeName: string, 
/**
 * Payee account.
 */
payeeAccount: string, 
/**
 * Minor units.
 */
amountMinor: string, 
/**
 * ISO 4217.
 */
currency: string, 
/**
 * Free text.
 */
reference: string, };

export type Outcome = "approved" | "declined" | "signed" | "rejected" | "refused";

export type OutcomeReason = "none" | "wrongPin" | "insufficientFunds" | "bankResponseInvalid" | "tampered" | "hostNotVerified" | "userRejected" | "pinBlocked";

export type PaymentResult = { 
/**
 * The payment.
 */
paymentId: string, 
/**
 * As the device decided.
 */
outcome: Outcome, 
/**
 * As the device reports it.
 */
indicator: Indicator, 
/**
 * Why.
 */
reason: OutcomeReason, 
/**
 * The device's display at the end.
 */
deviceLines: Array<string>, 
/**
 * The bank's journal reference (its transaction id) when approved.
 */
bankReference: string | null, 
/**
 * After a wrong PIN, how many tries the bank still allows before it blocks the PIN
 * (`None` when the bank did not say, or the PIN was not the reason).
 */
pinTriesLeft: number | null, };

export type HistoryOutcome = "approved" | "declined" | "open" | "expired";

export type PaymentOrigin = "app" | "confirmation";

export type PaymentRecord = { 
/**
 * The bank's transaction id.
 */
paymentId: string, 
/**
 * When the bank prepared it (ISO-8601, UTC).
 */
date: string, 
/**
 * When the bank decided it (ISO-8601, UTC).
 */
decidedAt: string | null, 
/**
 * Who was paid.
 */
payeeName: string, 
/**
 * Their account, masked (`•••• 0189`).
 */
payeeAccount: string, 
/**
 * The customer's account, masked.
 */
fromAccount: string, 
/**
 * Minor units as a decimal string.
 */
amountMinor: string, 
/**
 * ISO 4217.
 */
currency: string, 
/**
 * As the PIN pad wrote it (`EUR 123.45`).
 */
amountText: string, 
/**
 * The customer's reference.
 */
reference: string, 
/**
 * How it ended.
 */
outcome: HistoryOutcome, 
/**
 * Why it was declined (`none` otherwise).
 */
reason: OutcomeReason, 
/**
 * The bank's journal entry for the money moved (approved payments only).
 */
journalReference: string | null, 
/**
 * Who started it.
 */
origin: PaymentOrigin, };

export type PaymentHistory = { 
/**
 * The payments.
 */
payments: Array<PaymentRecord>, 
/**
 * Pass back for the next (older) page; `null` on the last.
 */
nextBefore: string | null, };

export type ConfirmationResult = { 
/**
 * The request.
 */
requestId: string, 
/**
 * As the device decided.
 */
outcome: Outcome, 
/**
 * As the device reports it.
 */
indicator: Indicator, 
/**
 * Why.
 */
reason: OutcomeReason, 
/**
 * The device's display at the end.
 */
deviceLines: Array<string>, };

export type StaffRole = "clerk" | "operator";

export type StaffSession = { 
/**
 * Sign-in name.
 */
staffId: string, 
/**
 * Display name.
 */
displayName: string, 
/**
 * Role.
 */
role: StaffRole, 
/**
 * What the bank lets this role do to a PIN pad here ([`StaffRole::actions`]): the screen
 * offers only these.
 */
actions: Array<StaffAction>, 
/**
 * What it may do by serial to a PIN pad that is not here (looking one up is for every
 * role).
 */
serialActions: Array<SerialAction>, };

export type StaffAction = "initialise" | "enrol" | "bind" | "revoke" | "rebind" | "tamperReset";

export type StaffActionResult = { 
/**
 * Which.
 */
action: StaffAction, 
/**
 * The device.
 */
deviceId: string, 
/**
 * Plain words, no secrets.
 */
detail: string, 
/**
 * The device afterwards.
 */
device: DeviceStatus, };

export type SerialAction = "revoke" | "lock" | "unlock" | "unpair";

export type BankDevice = { 
/**
 * Serial.
 */
serial: string, 
/**
 * The bank's lifecycle state (`initialised`, `bound`, `revoked`, ...).
 */
state: string, 
/**
 * Locked by the bank.
 */
locked: boolean, 
/**
 * The customer it is bound to, if any.
 */
customerId: string | null, 
/**
 * Its latest signed commands, newest first, with what the PIN pad answered to each.
 */
commands: Array<DeviceCommandRecord>, };

export type LossReport = { 
/**
 * The PIN pad reported lost.
 */
serial: string, 
/**
 * Plain words: what the bank did and what happens next.
 */
message: string, };

export type DeviceCommandRecord = { 
/**
 * The bank's sequence number of the command.
 */
sequence: number, 
/**
 * `lock`, `unlock`, `wipe`, `forget_hosts`, `end_session`, `operator_reset`, ...
 */
command: string, 
/**
 * Who issued it (a staff user, `login`, `customer ...`).
 */
issuedBy: string, 
/**
 * When (ms since the epoch).
 */
issuedAt: number, 
/**
 * `applied`, `not_applied` or `refused`; `None`: no answer reported yet.
 */
outcome: string | null, 
/**
 * The PIN pad's state in its answer (`bound, locked_by_bank`) or its refusal.
 */
detail: string | null, };

export type PinChangeVerdict = "changed" | "wrongPin" | "blocked" | "notChanged";

export type PinChangeResult = { 
/**
 * The verdict.
 */
verdict: PinChangeVerdict, 
/**
 * PIN tries left after a wrong current PIN.
 */
triesLeft: number | null, 
/**
 * What the PIN pad's screen says.
 */
deviceText: string, 
/**
 * Plain words for the customer.
 */
message: string, };

export type WipeResult = { 
/**
 * The wiped PIN pad.
 */
serial: string, 
/**
 * The bank accepted the PIN pad's signed receipt (the binding ended there).
 */
bankNotified: boolean, 
/**
 * Plain words for the customer.
 */
message: string, };

export type Fault = { "kind": "delay", 
/**
 * Milliseconds (at most 30 000).
 */
ms: number, } | { "kind": "drop" } | { "kind": "corrupt" } | { "kind": "disconnect" } | { "kind": "busy" } | { "kind": "userTooSlow" };

export type PassphraseNeed = "none" | "unlock" | "create";

export type ErrorKind = "deviceNotFound" | "deviceDisconnected" | "deviceBusy" | "timeout" | "userCancelled" | "userTooSlow" | "tampered" | "locked" | "revoked" | "notPaired" | "notInitialised" | "notEnrolled" | "notBound" | "pairingFailed" | "keyCheckFailed" | "integrityFailed" | "corruptFrame" | "bankUnreachable" | "bankRejected" | "notLoggedIn" | "staffAuthRequired" | "staffAuthFailed" | "staffNotAllowed" | "invalidInput" | "notFound" | "internal" | "noBankProfile";

export type AppError = { 
/**
 * What kind of failure (the screens explain each kind in plain words).
 */
kind: ErrorKind, 
/**
 * A finer, stable code for what happened, from the typed error where it was born: the
 * PIN pad's refusal (`device.PinPolicy`), the bank's (`bank.pin_locked`), the input's
 * (`input.invalid_amount`). The screens word it in the app's language.
 */
code?: string, 
/**
 * The technical details (English, for support), shown under "Details".
 */
message: string, 
/**
 * For a payment that failed: whether the bank recorded it as paid (`false`: nothing was
 * paid). Absent where no payment was under way, so the screens never guess.
 */
paid?: boolean, };

