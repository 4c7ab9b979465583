"""The UCP/EMI connector: a UCP session (:mod:`.session`) and its meaning (:mod:`.connector`)
on the shared SMSC link machinery (:mod:`services.smsc`)."""
