//! The report: the model that is the JSON contract (`model`), built once from
//! a `RunRecord` (`builder`), and formatted by the renderers (`render`).

pub mod builder;
pub mod model;
pub mod output;
pub mod render;

pub use builder::build;
pub use model::Report;
