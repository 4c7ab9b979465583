"""Pure protocol knowledge every side may import: GSM 03.38 tables and splitting, and one codec
module per SMSC protocol (frames in, frames out, no I/O). Nothing here touches a socket, the
broker or Redis, so the connectors, the SMSC simulator and the HTTP side can all share it."""
