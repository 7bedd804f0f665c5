//! The redis store for revocable sessions (work in progress).
