//! The network settings of a C program: a C program has no command line of ours, so the
//! environment says how remote writes leave and how a server's network role listens
//! ([`NetConfig::from_env`] lists the variables: `MAILSLOT_PORT`, `MAILSLOT_NETBIOS_NAME`,
//! `MAILSLOT_WORKGROUP`, `MAILSLOT_BROADCAST`, `MAILSLOT_BIND`, `MAILSLOT_NAME_SERVICE_PORT`,
//! `MAILSLOT_NO_NAME_SERVICE`).

use std::path::Path;

use ms::net::{NetConfig, Reporter};

use crate::error::{ms_error, Failure};

/// The network settings for runtime directory `dir`, from the environment.
pub(crate) fn config(dir: &Path) -> Result<NetConfig, Failure> {
    let mut config = NetConfig::from_env(dir)
        .map_err(|e| Failure::new(ms_error::MS_ERR_INVALID_OPTION, e.to_string()))?;
    // A library does not print: failures reach the caller as error codes.
    config.reporter = Reporter::silent();
    Ok(config)
}
