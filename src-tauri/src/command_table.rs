// The one table of the app's commands: registration (lib.rs), the ACL manifest and the
// capability files (build.rs), the TypeScript command names (ui/src/api/commands.ts) and the
// contract's list (ui/README.md; both checked by tests/contract.rs) are derived from it.
// Each includer defines `command_table!` to take what it needs; this file is `include!`d, so
// it holds the invocation only.
command_table! {
    // Need no bank.
    plain: [
        app_info,
        events_subscribe,
        device_list,
        device_status,
        key_store_status,
        key_store_unlock,
        confirmations_list,
        logs_list,
        logs_export,
        diagnostics_export,
        settings_get,
        settings_set,
    ],
    // Start or drive a flow with the bank: refused with `noBankProfile` when the production
    // build has no valid bank profile.
    flow: [
        device_connect,
        device_disconnect,
        pairing_begin,
        pairing_confirm,
        pairing_cancel,
        login,
        logout,
        payment_prepare,
        payment_approve,
        payment_cancel,
        payment_history,
        staff_sign_in,
        staff_sign_out,
        staff_initialise,
        staff_enrol,
        staff_bind,
        staff_revoke,
        staff_rebind,
        staff_tamper_reset,
        staff_device_lookup,
        staff_by_serial,
        staff_rebind_by_serial,
        device_report_lost,
        pin_change,
        device_wipe,
        confirmation_approve,
    ],
    // The sandbox flavour's QA commands (`--features sandbox`), granted by
    // capabilities/sandbox/qa.json only.
    qa: [
        qa_mock_start,
        qa_mock_stop,
        qa_key_press,
        qa_trip_tamper,
        qa_inject_fault,
        qa_clear_faults,
        qa_push_confirmation,
    ],
}
