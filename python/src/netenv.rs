//! The network settings of a Python program, from the environment, as the C library reads
//! them (the same variables, so one setup serves both): `MAILSLOT_PORT`,
//! `MAILSLOT_NETBIOS_NAME`, `MAILSLOT_WORKGROUP`, `MAILSLOT_BROADCAST` (comma-separated),
//! `MAILSLOT_BIND`, `MAILSLOT_NAME_SERVICE_PORT`, `MAILSLOT_NO_NAME_SERVICE=1`.

use std::net::Ipv4Addr;
use std::path::Path;

use mailslot::net::{NetConfig, Reporter};
use pyo3::PyErr;

use crate::errors;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn bad(name: &str, value: &str, what: &str) -> PyErr {
    errors::error(
        "InvalidOption",
        format!("{name}={value:?} is not {what}"),
        "",
        None,
    )
}

fn parse<T: std::str::FromStr>(name: &str, what: &str) -> Result<Option<T>, PyErr> {
    match var(name) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| bad(name, &v, what)),
    }
}

/// The network settings for runtime directory `dir`, from the environment (module docs).
pub(crate) fn config(dir: &Path) -> Result<NetConfig, PyErr> {
    let mut config = NetConfig::new(dir);
    // A library does not print: failures reach the caller as exceptions.
    config.reporter = Reporter::silent();
    if let Some(port) = parse::<u16>("MAILSLOT_PORT", "a UDP port")? {
        config.port = port;
    }
    if let Some(name) = var("MAILSLOT_NETBIOS_NAME") {
        config.netbios_name = name.trim().to_uppercase();
    }
    if let Some(group) = var("MAILSLOT_WORKGROUP") {
        config.workgroup = group.trim().to_uppercase();
    }
    if let Some(list) = var("MAILSLOT_BROADCAST") {
        config.broadcast = list
            .split([',', ' '])
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse::<Ipv4Addr>()
                    .map_err(|_| bad("MAILSLOT_BROADCAST", a, "an IPv4 address"))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(bind) = parse::<Ipv4Addr>("MAILSLOT_BIND", "an IPv4 address")? {
        config.bind = bind;
    }
    if let Some(port) = parse::<u16>("MAILSLOT_NAME_SERVICE_PORT", "a UDP port")? {
        config.name_service_port = port;
    }
    if var("MAILSLOT_NO_NAME_SERVICE").is_some_and(|v| v.trim() != "0") {
        config.name_service = false;
    }
    Ok(config)
}
