//! The network settings of a Python program, from the environment, as the C library reads
//! them (the same variables, so one setup serves both; [`NetConfig::from_env`] lists them).

use std::path::Path;

use mailslot::net::{NetConfig, Reporter};
use pyo3::PyErr;

use crate::errors;

/// The network settings for runtime directory `dir`, from the environment.
pub(crate) fn config(dir: &Path) -> Result<NetConfig, PyErr> {
    let mut config = NetConfig::from_env(dir)
        .map_err(|e| errors::error("InvalidOption", e.to_string(), "", None))?;
    // A library does not print: failures reach the caller as exceptions.
    config.reporter = Reporter::silent();
    Ok(config)
}
