//! (capture: written below)
