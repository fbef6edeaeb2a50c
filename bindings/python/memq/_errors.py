"""The exceptions of the memq client; the native module raises these classes."""

import builtins


class Error(Exception):
    """Base of every error the memq client raises."""


class BrokerError(Error):
    """The broker refused a request; ``reason`` holds its words."""

    def __init__(self, message, reason=""):
        super().__init__(message)
        self.reason = reason

    def __repr__(self):
        return f"{type(self).__name__}({self.args[0]!r}, {self.reason!r})"


class Timeout(Error, builtins.TimeoutError):
    """A blocking call's timeout passed before its answer came."""


class ConnectionError(Error, builtins.ConnectionError):  # noqa: A001 - memq.ConnectionError on purpose
    """Could not connect, or the connection was lost before the answer came."""


class TlsError(ConnectionError):
    """TLS failed: a certificate file that cannot be loaded, the broker's
    certificate not verified, or the broker refusing ours; the message names
    the cause."""


class InboxFull(Error):
    """The inbox holds max_inbox_messages undelivered messages, so nothing
    more is read from the connection, and the call needed what only reading
    further brings (a reply, room to publish). Take messages with receive()
    and call again; the message names the bound."""


class ProtocolViolation(Error):
    """The broker sent something the protocol does not allow."""
