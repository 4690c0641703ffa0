//! The egressc data model: the user-facing API types (`api`), the validated, typed catalog the
//! compiler and controller work on (`catalog`), the label scheme that connects the two
//! halves of the product (`labels`), and the shortener that fits derived names into their
//! length limits (`names`).
//!
//! Everything here is pure data: no I/O, no clock, no client. `kube::core` is used only for its
//! data types (ObjectMeta, the `CustomResource` derive), never for talking to a cluster.

pub mod api;
pub mod catalog;
pub mod cilium;
pub mod labels;
pub mod names;
