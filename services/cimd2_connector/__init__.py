"""The CIMD2 connector: a CIMD2 session (:mod:`.session`) and its meaning (:mod:`.connector`)
on the shared SMSC link machinery (:mod:`services.smsc`)."""
