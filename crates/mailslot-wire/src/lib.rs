//! Sans-I/O codec for Windows remote mailslots (placeholder, filled by the wire work).
#![forbid(unsafe_code)]
