//! The sqlite store for revocable sessions (work in progress).
