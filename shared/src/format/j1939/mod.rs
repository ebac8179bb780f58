//! J1939 beyond single frames: the transport protocol that carries messages
//! of up to 1,785 bytes ([`transport`]), and the diagnostic messages that
//! travel on it most ([`dm1`]: the active trouble codes). The DBC codec
//! decodes single-frame PGNs ([`super::dbc`]).

pub mod dm1;
pub mod transport;
