//! `pinpad-sim`: the PinBridge PIN pad simulator.

fn main() {}
