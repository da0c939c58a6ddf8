//! feature
