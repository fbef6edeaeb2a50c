"""memq: a client for the memq broker (and any aiomemq-protocol server).

    import memq
    with memq.Client(port=7000) as client:
        client.subscribe("orders")
        client.send("orders", "42")
        print(client.receive(timeout=1.0))

``Client`` calls that wait release the GIL; ``receive(timeout)`` returns None
when nothing arrives in time, which is how to check that nothing more comes.
"""

from ._errors import BrokerError, ConnectionError, Error, ProtocolViolation, Timeout
from ._memq import Client, Message, Reset

__all__ = ["Client", "Message", "Reset", "Error", "BrokerError", "Timeout", "ConnectionError", "ProtocolViolation"]
__version__ = "0.1.0"
