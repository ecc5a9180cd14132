//! Rewrite passes (to be written).
