"""memq: a client for the memq broker (and any aiomemq-protocol server).

    import memq
    with memq.Client(port=7000) as client:
        client.subscribe("orders")
        client.send("orders", "42")
        print(client.receive(timeout=1.0))

``Client`` calls that wait release the GIL; ``receive(timeout)`` returns None
when nothing arrives in time, which is how to check that nothing more comes.

Over TLS (memqd's ``--tls-port``): ``memq.Client(port=7443, tls=True,
tls_ca="ca.pem")``, and for mutual TLS also ``tls_cert=`` and ``tls_key=``;
a TLS failure raises ``memq.TlsError`` (a ``memq.ConnectionError``) naming
the cause.

The inbox is bounded (``max_inbox_messages=65536``, keyword-only): at the
bound the client reads nothing more from the broker (which then queues for
it, and past its ``--max-pending-bytes`` closes it as a slow consumer; with
``reconnect=True`` it resumes and counts a gap), and a call that needs to read
further raises ``memq.InboxFull`` at once. ``receive()`` drains it.
"""

from ._errors import BrokerError, ConnectionError, Error, InboxFull, ProtocolViolation, Timeout, TlsError
from ._memq import Client, Message, Reset

__all__ = ["Client", "Message", "Reset", "Error", "BrokerError", "Timeout", "ConnectionError", "ProtocolViolation",
           "TlsError", "InboxFull"]
__version__ = "0.1.0"
