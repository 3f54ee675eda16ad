//! The report: the model that is the JSON contract (`model`), built once from
//! a `RunRecord` (`builder`), and formatted by the renderers (`render`);
//! two or more reports compared (`compare`); where outputs go (`output`);
//! a figure fitted against rows over several scales (`fit`, for `run --scales`).

pub mod builder;
pub mod compare;
pub mod fit;
pub mod model;
pub mod output;
pub mod render;

pub use builder::build;
pub use model::Report;
