//! Local, shared and LAN mailslots for Linux (placeholder).
