//! (preflight: written below)
