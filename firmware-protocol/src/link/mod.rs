//! Link layer (being written).
