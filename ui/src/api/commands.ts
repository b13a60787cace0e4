// GENERATED from src-tauri/src/command_table.rs by src-tauri/tests/contract.rs.
// Do not edit: change the table, then run
// PINBRIDGE_UPDATE_CONTRACT=1 cargo test -p pinbridge-app --test contract

/** Commands that need no bank. */
export const PLAIN_COMMANDS = [
  'app_info',
  'events_subscribe',
  'device_list',
  'device_status',
  'key_store_status',
  'key_store_unlock',
  'confirmations_list',
  'logs_list',
  'logs_export',
  'diagnostics_export',
  'settings_get',
  'settings_set',
] as const;

/** Commands that start or drive a flow with the bank (refused with `noBankProfile` without one). */
export const FLOW_COMMANDS = [
  'device_connect',
  'device_disconnect',
  'pairing_begin',
  'pairing_confirm',
  'pairing_cancel',
  'login',
  'logout',
  'payment_prepare',
  'payment_approve',
  'payment_cancel',
  'payment_history',
  'staff_sign_in',
  'staff_sign_out',
  'staff_initialise',
  'staff_enrol',
  'staff_bind',
  'staff_revoke',
  'staff_rebind',
  'staff_tamper_reset',
  'staff_device_lookup',
  'staff_by_serial',
  'staff_rebind_by_serial',
  'device_report_lost',
  'pin_change',
  'device_wipe',
  'confirmation_approve',
] as const;

/** The sandbox build's QA commands (absent from the production build). */
export const QA_COMMANDS = [
  'qa_mock_start',
  'qa_mock_stop',
  'qa_key_press',
  'qa_trip_tamper',
  'qa_inject_fault',
  'qa_clear_faults',
  'qa_push_confirmation',
] as const;

export type Command =
  | (typeof PLAIN_COMMANDS)[number]
  | (typeof FLOW_COMMANDS)[number]
  | (typeof QA_COMMANDS)[number];
