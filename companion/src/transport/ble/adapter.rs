//! Which Bluetooth adapter the central uses, decided from what each adapter is doing (a pure
//! function, tested without Bluetooth).
//!
//! Rules: an adapter named by the user (setting or `--ble-adapter`) is used, whatever it does;
//! otherwise an adapter that is advertising is never chosen (on a QA machine that is the one
//! hosting a simulated PIN pad; scanning from it finds nothing, and a central has no reason to
//! advertise); of the rest, the only one is used, and several are an error that names them
//! (operating systems list adapters in no stable order, so "the first" would change between
//! runs).

/// What the chooser knows of one adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The system's name for it (`hci0` on Linux).
    pub name: String,
    /// It has advertisements registered (BlueZ: `LEAdvertisingManager1.ActiveInstances`).
    pub advertising: bool,
}

/// Why no adapter was chosen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdapterChoiceError {
    /// The system has none.
    #[error("no Bluetooth adapter found; switch Bluetooth on or plug in an adapter")]
    NoAdapter,
    /// The adapter asked for is not there.
    #[error("no Bluetooth adapter {wanted} (present: {})", .present.join(", "))]
    NotPresent {
        /// The name asked for.
        wanted: String,
        /// The names present.
        present: Vec<String>,
    },
    /// Every adapter advertises (each is likely a peripheral's, a simulated PIN pad's say).
    #[error(
        "every Bluetooth adapter here is advertising ({}), so none is free to scan for PIN pads; name the one to use with --ble-adapter (or the bleAdapter setting)",
        .advertising.join(", ")
    )]
    OnlyAdvertising {
        /// The advertising adapters.
        advertising: Vec<String>,
    },
    /// Several fit and none was named.
    #[error(
        "{} Bluetooth adapters could scan for PIN pads ({}); name one with --ble-adapter (or the bleAdapter setting)",
        .candidates.len(), .candidates.join(", ")
    )]
    Ambiguous {
        /// The adapters that fit.
        candidates: Vec<String>,
    },
}

/// The index of the adapter to use in `adapters`.
pub fn choose_adapter(
    adapters: &[AdapterSummary],
    wanted: Option<&str>,
) -> Result<usize, AdapterChoiceError> {
    if adapters.is_empty() {
        return Err(AdapterChoiceError::NoAdapter);
    }
    if let Some(wanted) = wanted {
        return adapters
            .iter()
            .position(|a| a.name == wanted)
            .ok_or_else(|| AdapterChoiceError::NotPresent {
                wanted: wanted.to_owned(),
                present: adapters.iter().map(|a| a.name.clone()).collect(),
            });
    }
    let free: Vec<usize> = (0..adapters.len())
        .filter(|&i| !adapters[i].advertising)
        .collect();
    match free.as_slice() {
        [only] => Ok(*only),
        [] => Err(AdapterChoiceError::OnlyAdvertising {
            advertising: adapters.iter().map(|a| a.name.clone()).collect(),
        }),
        several => Err(AdapterChoiceError::Ambiguous {
            candidates: several.iter().map(|&i| adapters[i].name.clone()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, advertising: bool) -> AdapterSummary {
        AdapterSummary {
            name: name.into(),
            advertising,
        }
    }

    #[test]
    fn the_adapter_hosting_an_advertisement_is_never_the_default_in_any_order() {
        // btvirt's two controllers, listed in either order: hci0 hosts the PIN pad.
        let peripheral = adapter("hci0", true);
        let central = adapter("hci1", false);
        let one = [peripheral.clone(), central.clone()];
        let other = [central, peripheral];
        assert_eq!(one[choose_adapter(&one, None).unwrap()].name, "hci1");
        assert_eq!(other[choose_adapter(&other, None).unwrap()].name, "hci1");
    }

    #[test]
    fn a_named_adapter_is_used_even_if_it_advertises() {
        let adapters = [adapter("hci0", true), adapter("hci1", false)];
        assert_eq!(choose_adapter(&adapters, Some("hci0")), Ok(0));
        let error = choose_adapter(&adapters, Some("hci7")).unwrap_err();
        assert!(error.to_string().contains("hci7"), "{error}");
        assert!(error.to_string().contains("hci0, hci1"), "{error}");
    }

    #[test]
    fn several_free_adapters_are_an_error_naming_them() {
        let adapters = [adapter("hci0", false), adapter("hci1", false)];
        let error = choose_adapter(&adapters, None).unwrap_err();
        assert!(matches!(error, AdapterChoiceError::Ambiguous { .. }));
        let text = error.to_string();
        assert!(
            text.contains("hci0, hci1") && text.contains("--ble-adapter"),
            "{text}"
        );
    }

    #[test]
    fn one_adapter_is_used_and_none_or_only_advertising_ones_are_errors() {
        assert_eq!(choose_adapter(&[adapter("hci0", false)], None), Ok(0));
        assert_eq!(
            choose_adapter(&[], None),
            Err(AdapterChoiceError::NoAdapter)
        );
        assert!(matches!(
            choose_adapter(&[adapter("hci0", true)], None),
            Err(AdapterChoiceError::OnlyAdvertising { .. })
        ));
    }
}
