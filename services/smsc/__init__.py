"""The link machinery every SMSC protocol shares (SMPP, UCP/EMI, CIMD2).

A protocol adds a pure codec in :mod:`services.protocols` and, in its connector package, a
session (its frames on :class:`.session.Session`) and a connector (its meaning on
:class:`.connector.SmscConnector`). Everything else is here, once:

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
:mod:`.session`    one TCP connection: connect (TCP_NODELAY), login via the protocol's hook,
                   coalesced writes, the read loop, answers matched to requests by key
                   (sequence number, (TRN, OT), packet number), the submit window and
                   timeout (:class:`~.session.SubmitTimeout` closes the session), keep-alive
                   when idle, deliveries answered only after their handler returned,
                   :class:`~.session.LinkDown` for everything waiting when it closes.
:mod:`.window`     :class:`~.window.Window`: at most ``window`` submits awaiting an answer,
                   waiters served in order and failed together on close.
:mod:`.link`       :class:`~.link.Link`: one keeper task per role (reconnect with backoff and
                   jitter), the ``tps`` token bucket, the link-wide throttling pause,
                   ``on_state`` (bound / unbound) and ``on_event`` (channel logs).
:mod:`.store`      :class:`~.store.Store`: the correlation in Redis (id key -> SendRequest,
                   written before the ack), the ``sent:`` record, multipart receipt progress,
                   MO parts; keys namespaced ``<protocol>:<connection>:``.
:mod:`.connector`  :class:`~.connector.SmscConnector`: the queue consumed only while bound,
                   SendRequest -> parts -> submits -> statuses (retry, throttling, failures),
                   receipts -> one StatusUpdate per message and state, MO reassembly and
                   publishing, answers to the SMSC only after the broker confirmed,
                   ChannelLogs, metrics, SIGTERM; :func:`~.connector.main_for` (the ``-m``
                   entry point of every connector). The neutral types a protocol fills in:
                   :class:`~.connector.Submitted`, :class:`~.connector.Report`,
                   :class:`~.connector.Incoming`, :class:`~.connector.Answer`.
:mod:`.metrics`    the Prometheus families, one set per protocol (``switchboard_<p>_*``).
:mod:`.testkit`    test plumbing: a channels file for one connection and a connector running
                   in the test's event loop against a simulator (tests and bench only).
=================  ==========================================================================

The layering: like :mod:`services.core`, this package imports no connector, no simulator and
no other service (import-linter holds it); connectors import it.
"""
