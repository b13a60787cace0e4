//! Message layer (being written).
