//! The postgres store for revocable sessions (work in progress).
