//! [MS-BRWS] browser frames carried on `\MAILSLOT\BROWSE`. The mailslot data
//! starts with a one-byte opcode; fields are little-endian.

use crate::error::{Error, Result};

/// The browser's mailslot.
pub const BROWSE_MAILSLOT: &str = "\\MAILSLOT\\BROWSE";

/// Opcode 0x01 HostAnnouncement.
pub const HOST_ANNOUNCEMENT: u8 = 0x01;
/// Opcode 0x02 AnnouncementRequest.
pub const ANNOUNCEMENT_REQUEST: u8 = 0x02;
/// Opcode 0x08 RequestElection.
pub const REQUEST_ELECTION: u8 = 0x08;
/// Opcode 0x09 GetBackupListRequest.
pub const GET_BACKUP_LIST_REQUEST: u8 = 0x09;
/// Opcode 0x0A GetBackupListResponse.
pub const GET_BACKUP_LIST_RESPONSE: u8 = 0x0A;
/// Opcode 0x0B BecomeBackup.
pub const BECOME_BACKUP: u8 = 0x0B;
/// Opcode 0x0C DomainAnnouncement.
pub const DOMAIN_ANNOUNCEMENT: u8 = 0x0C;
/// Opcode 0x0D MasterAnnouncement.
pub const MASTER_ANNOUNCEMENT: u8 = 0x0D;
/// Opcode 0x0E ResetStateRequest.
pub const RESET_STATE_REQUEST: u8 = 0x0E;
/// Opcode 0x0F LocalMasterAnnouncement.
pub const LOCAL_MASTER_ANNOUNCEMENT: u8 = 0x0F;

/// Signature of announcements (`55 AA` on the wire).
pub const ANNOUNCEMENT_SIGNATURE: u16 = 0xAA55;

/// The frame's name in [MS-BRWS].
pub const fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        HOST_ANNOUNCEMENT => "HostAnnouncement",
        ANNOUNCEMENT_REQUEST => "AnnouncementRequest",
        REQUEST_ELECTION => "RequestElection",
        GET_BACKUP_LIST_REQUEST => "GetBackupListRequest",
        GET_BACKUP_LIST_RESPONSE => "GetBackupListResponse",
        BECOME_BACKUP => "BecomeBackup",
        DOMAIN_ANNOUNCEMENT => "DomainAnnouncement",
        MASTER_ANNOUNCEMENT => "MasterAnnouncement",
        RESET_STATE_REQUEST => "ResetStateRequest",
        LOCAL_MASTER_ANNOUNCEMENT => "LocalMasterAnnouncement",
        _ => "Unknown",
    }
}

/// Bytes up to the first NUL (or all of them), and what follows the NUL.
fn cstr(buf: &[u8]) -> (&[u8], &[u8]) {
    match buf.iter().position(|&b| b == 0) {
        Some(nul) => (&buf[..nul], &buf[nul + 1..]),
        None => (buf, &[]),
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn no_nul(s: &[u8], what: &'static str) -> Result<()> {
    if s.contains(&0) {
        Err(Error::invalid(what))
    } else {
        Ok(())
    }
}

/// HostAnnouncement, LocalMasterAnnouncement and DomainAnnouncement share this layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Announcement<'a> {
    /// UpdateCount (spec: 0; Samba sends a counter).
    pub update_count: u8,
    /// Periodicity: announcement interval in ms.
    pub periodicity: u32,
    /// ServerName (DomainAnnouncement: MachineGroup), up to the NUL of the 16-byte field.
    pub server_name: &'a [u8],
    /// OSVersionMajor.
    pub os_version_major: u8,
    /// OSVersionMinor.
    pub os_version_minor: u8,
    /// ServerType (SV_TYPE_* bits; DomainAnnouncement: the domain's type bits).
    pub server_type: u32,
    /// BrowserVersionMajor (0x0F).
    pub browser_version_major: u8,
    /// BrowserVersionMinor (0x01).
    pub browser_version_minor: u8,
    /// Signature (0xAA55).
    pub signature: u16,
    /// Comment (DomainAnnouncement: the local master browser's name), without its NUL.
    pub comment: &'a [u8],
}

/// Offsets inside an announcement (after the opcode byte at 0).
const ANNOUNCEMENT_FIXED_LEN: usize = 32;

impl<'a> Announcement<'a> {
    fn parse(frame: &'a [u8]) -> Result<Self> {
        // 32 fixed bytes and at least the comment's NUL (VU#323172: check before using).
        if frame.len() < ANNOUNCEMENT_FIXED_LEN + 1 {
            return Err(Error::truncated("browser announcement (33 bytes minimum)"));
        }
        Ok(Self {
            update_count: frame[1],
            periodicity: le32(&frame[2..6]),
            server_name: cstr(&frame[6..22]).0,
            os_version_major: frame[22],
            os_version_minor: frame[23],
            server_type: le32(&frame[24..28]),
            browser_version_major: frame[28],
            browser_version_minor: frame[29],
            signature: u16::from_le_bytes([frame[30], frame[31]]),
            comment: cstr(&frame[ANNOUNCEMENT_FIXED_LEN..]).0,
        })
    }

    fn emit(&self, out: &mut [u8]) -> Result<()> {
        if self.server_name.len() > 16 {
            return Err(Error::invalid("browser ServerName longer than 16 bytes"));
        }
        no_nul(self.server_name, "NUL inside browser ServerName")?;
        no_nul(self.comment, "NUL inside browser Comment")?;
        out[1] = self.update_count;
        out[2..6].copy_from_slice(&self.periodicity.to_le_bytes());
        out[6..22].fill(0);
        out[6..6 + self.server_name.len()].copy_from_slice(self.server_name);
        out[22] = self.os_version_major;
        out[23] = self.os_version_minor;
        out[24..28].copy_from_slice(&self.server_type.to_le_bytes());
        out[28] = self.browser_version_major;
        out[29] = self.browser_version_minor;
        out[30..32].copy_from_slice(&self.signature.to_le_bytes());
        let end = ANNOUNCEMENT_FIXED_LEN + self.comment.len();
        out[ANNOUNCEMENT_FIXED_LEN..end].copy_from_slice(self.comment);
        out[end] = 0;
        Ok(())
    }
}

/// RequestElection body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Election<'a> {
    /// Version (1).
    pub version: u8,
    /// Criteria (OS, browser version, role bits).
    pub criteria: u32,
    /// Uptime in seconds.
    pub uptime: u32,
    /// ServerName, without its NUL.
    pub server_name: &'a [u8],
}

/// The NUL-separated BackupServerList of a GetBackupListResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerList<'a>(pub &'a [u8]);

impl<'a> ServerList<'a> {
    /// The server names (empty entries skipped).
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(|&b| b == 0).filter(|s| !s.is_empty())
    }
}

/// A browser frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrowserFrame<'a> {
    /// 0x01, to `<wg><1D>`.
    HostAnnouncement(Announcement<'a>),
    /// 0x0F, to `<wg><1E>`.
    LocalMasterAnnouncement(Announcement<'a>),
    /// 0x0C, to `__MSBROWSE__<01>`; `server_name` is MachineGroup, `comment` the master's name.
    DomainAnnouncement(Announcement<'a>),
    /// 0x02: asks every browser to announce itself.
    AnnouncementRequest {
        /// ResponseName (without NUL).
        response_name: &'a [u8],
    },
    /// 0x08.
    RequestElection(Election<'a>),
    /// 0x09, to `<wg><1D>`; the master answers to the request's source port.
    GetBackupListRequest {
        /// RequestedCount.
        requested_count: u8,
        /// Token, echoed in the response.
        token: u32,
    },
    /// 0x0A.
    GetBackupListResponse {
        /// BackupServerCount.
        backup_server_count: u8,
        /// Token of the request.
        token: u32,
        /// BackupServerList.
        servers: ServerList<'a>,
    },
    /// Any other opcode (BecomeBackup, MasterAnnouncement, ResetStateRequest, unknown), raw.
    Other {
        /// Opcode.
        opcode: u8,
        /// The bytes after the opcode.
        body: &'a [u8],
    },
}

impl<'a> BrowserFrame<'a> {
    /// Parses the data of a `\MAILSLOT\BROWSE` write. Strings end at their NUL or at the end of
    /// the frame; 16-byte name fields are read only within their 16 bytes.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated) below each frame's minimum length.
    pub fn parse(frame: &'a [u8]) -> Result<Self> {
        let (&opcode, body) = frame
            .split_first()
            .ok_or(Error::truncated("browser opcode"))?;
        Ok(match opcode {
            HOST_ANNOUNCEMENT => Self::HostAnnouncement(Announcement::parse(frame)?),
            LOCAL_MASTER_ANNOUNCEMENT => Self::LocalMasterAnnouncement(Announcement::parse(frame)?),
            DOMAIN_ANNOUNCEMENT => Self::DomainAnnouncement(Announcement::parse(frame)?),
            ANNOUNCEMENT_REQUEST => {
                if body.len() < 2 {
                    return Err(Error::truncated("AnnouncementRequest"));
                }
                Self::AnnouncementRequest {
                    response_name: cstr(&body[1..]).0,
                }
            }
            REQUEST_ELECTION => {
                if body.len() < 14 {
                    return Err(Error::truncated("RequestElection (15 bytes minimum)"));
                }
                Self::RequestElection(Election {
                    version: body[0],
                    criteria: le32(&body[1..5]),
                    uptime: le32(&body[5..9]),
                    server_name: cstr(&body[13..]).0,
                })
            }
            GET_BACKUP_LIST_REQUEST => {
                if body.len() < 5 {
                    return Err(Error::truncated("GetBackupListRequest"));
                }
                Self::GetBackupListRequest {
                    requested_count: body[0],
                    token: le32(&body[1..5]),
                }
            }
            GET_BACKUP_LIST_RESPONSE => {
                if body.len() < 5 {
                    return Err(Error::truncated("GetBackupListResponse"));
                }
                Self::GetBackupListResponse {
                    backup_server_count: body[0],
                    token: le32(&body[1..5]),
                    servers: ServerList(&body[5..]),
                }
            }
            opcode => Self::Other { opcode, body },
        })
    }

    /// The opcode byte.
    pub const fn opcode(&self) -> u8 {
        match self {
            Self::HostAnnouncement(_) => HOST_ANNOUNCEMENT,
            Self::LocalMasterAnnouncement(_) => LOCAL_MASTER_ANNOUNCEMENT,
            Self::DomainAnnouncement(_) => DOMAIN_ANNOUNCEMENT,
            Self::AnnouncementRequest { .. } => ANNOUNCEMENT_REQUEST,
            Self::RequestElection(_) => REQUEST_ELECTION,
            Self::GetBackupListRequest { .. } => GET_BACKUP_LIST_REQUEST,
            Self::GetBackupListResponse { .. } => GET_BACKUP_LIST_RESPONSE,
            Self::Other { opcode, .. } => *opcode,
        }
    }

    /// Bytes [`BrowserFrame::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::HostAnnouncement(a)
            | Self::LocalMasterAnnouncement(a)
            | Self::DomainAnnouncement(a) => ANNOUNCEMENT_FIXED_LEN + a.comment.len() + 1,
            Self::AnnouncementRequest { response_name } => 2 + response_name.len() + 1,
            Self::RequestElection(e) => 14 + e.server_name.len() + 1,
            Self::GetBackupListRequest { .. } => 6,
            Self::GetBackupListResponse { servers, .. } => 6 + servers.0.len(),
            Self::Other { body, .. } => 1 + body.len(),
        }
    }

    /// Writes the frame to the start of `buf`; returns its length. Strings get their NUL;
    /// 16-byte name fields are NUL-padded.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) for a NUL inside a string or a
    /// ServerName over 16 bytes; [`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::buffer_too_small())?;
        out[0] = self.opcode();
        match self {
            Self::HostAnnouncement(a)
            | Self::LocalMasterAnnouncement(a)
            | Self::DomainAnnouncement(a) => a.emit(out)?,
            Self::AnnouncementRequest { response_name } => {
                no_nul(response_name, "NUL inside browser ResponseName")?;
                out[1] = 0;
                out[2..len - 1].copy_from_slice(response_name);
                out[len - 1] = 0;
            }
            Self::RequestElection(e) => {
                no_nul(e.server_name, "NUL inside browser ServerName")?;
                out[1] = e.version;
                out[2..6].copy_from_slice(&e.criteria.to_le_bytes());
                out[6..10].copy_from_slice(&e.uptime.to_le_bytes());
                out[10..14].fill(0);
                out[14..len - 1].copy_from_slice(e.server_name);
                out[len - 1] = 0;
            }
            Self::GetBackupListRequest {
                requested_count,
                token,
            } => {
                out[1] = *requested_count;
                out[2..6].copy_from_slice(&token.to_le_bytes());
            }
            Self::GetBackupListResponse {
                backup_server_count,
                token,
                servers,
            } => {
                out[1] = *backup_server_count;
                out[2..6].copy_from_slice(&token.to_le_bytes());
                out[6..].copy_from_slice(servers.0);
            }
            Self::Other { body, .. } => out[1..].copy_from_slice(body),
        }
        Ok(len)
    }

    /// [`BrowserFrame::emit`] into a new vector.
    ///
    /// # Errors
    /// As [`BrowserFrame::emit`].
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samba_backup_list_request() {
        // browse_payload.py backup-list-request: ReqCount 4, Token 0xDEADBEEF.
        let f = BrowserFrame::GetBackupListRequest {
            requested_count: 4,
            token: 0xDEAD_BEEF,
        };
        assert_eq!(f.to_vec().unwrap(), [0x09, 0x04, 0xEF, 0xBE, 0xAD, 0xDE]);
        assert_eq!(BrowserFrame::parse(&f.to_vec().unwrap()).unwrap(), f);
    }

    #[test]
    fn backup_list_response_from_nmbd() {
        let b = b"\x0a\x01\xef\xbe\xad\xdeNMBD-A\x00";
        let BrowserFrame::GetBackupListResponse {
            backup_server_count,
            token,
            servers,
        } = BrowserFrame::parse(b).unwrap()
        else {
            panic!("wrong frame")
        };
        assert_eq!((backup_server_count, token), (1, 0xDEAD_BEEF));
        assert_eq!(servers.iter().collect::<Vec<_>>(), [b"NMBD-A"]);
    }

    #[test]
    fn short_frames_rejected() {
        assert!(BrowserFrame::parse(b"").is_err());
        assert!(BrowserFrame::parse(&[1; 32]).is_err());
        assert!(BrowserFrame::parse(&[1; 33]).is_ok());
        assert!(BrowserFrame::parse(&[8; 14]).is_err());
        assert!(BrowserFrame::parse(&[8; 15]).is_ok());
        assert!(BrowserFrame::parse(&[9; 5]).is_err());
        assert!(BrowserFrame::parse(&[2; 2]).is_err());
    }

    #[test]
    fn election_round_trip() {
        let f = BrowserFrame::RequestElection(Election {
            version: 1,
            criteria: 0x2001_0F41,
            uptime: 17,
            server_name: b"NMBD-A",
        });
        assert_eq!(BrowserFrame::parse(&f.to_vec().unwrap()).unwrap(), f);
        let f = BrowserFrame::AnnouncementRequest {
            response_name: b"MS-B",
        };
        assert_eq!(BrowserFrame::parse(&f.to_vec().unwrap()).unwrap(), f);
    }
}
