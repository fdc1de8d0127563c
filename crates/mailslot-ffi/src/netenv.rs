//! The network settings of a C program, from the environment: a C program has no command line
//! of ours, so the variables the `mailslot` command reads (and a few it takes as options) say
//! how remote writes leave and how a server's network role listens.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MAILSLOT_PORT` | UDP port of the datagram service | 138 |
//! | `MAILSLOT_NETBIOS_NAME` | our NetBIOS name | the host name |
//! | `MAILSLOT_WORKGROUP` | our workgroup (`\\*\mailslot\` goes to it) | `WORKGROUP` |
//! | `MAILSLOT_BROADCAST` | broadcast addresses of group targets (a, b) | every interface's |
//! | `MAILSLOT_BIND` | local address of the role's socket | `0.0.0.0` |
//! | `MAILSLOT_NAME_SERVICE_PORT` | UDP port of NetBIOS name queries and answers | 137 |
//! | `MAILSLOT_NO_NAME_SERVICE` | `1`: do not answer name queries while holding the role | answer |

use std::net::Ipv4Addr;
use std::path::Path;

use ms::net::{NetConfig, Reporter};

use crate::error::{ms_error, Failure};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(name: &str) -> Result<Option<T>, Failure> {
    match var(name) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            Failure::new(
                ms_error::MS_ERR_INVALID_OPTION,
                format!("{name}={v:?} is not a valid value"),
            )
        }),
    }
}

/// The network settings for runtime directory `dir`, from the environment (module docs).
pub(crate) fn config(dir: &Path) -> Result<NetConfig, Failure> {
    let mut config = NetConfig::new(dir);
    // A library does not print: failures reach the caller as error codes.
    config.reporter = Reporter::silent();
    if let Some(port) = parse::<u16>("MAILSLOT_PORT")? {
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
                a.parse::<Ipv4Addr>().map_err(|_| {
                    Failure::new(
                        ms_error::MS_ERR_INVALID_OPTION,
                        format!("MAILSLOT_BROADCAST: {a:?} is not an IPv4 address"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(bind) = parse::<Ipv4Addr>("MAILSLOT_BIND")? {
        config.bind = bind;
    }
    if let Some(port) = parse::<u16>("MAILSLOT_NAME_SERVICE_PORT")? {
        config.name_service_port = port;
    }
    if var("MAILSLOT_NO_NAME_SERVICE").is_some_and(|v| v.trim() != "0") {
        config.name_service = false;
    }
    Ok(config)
}
