"""The Python types of memq behave like Python values (or, for Client, like a
resource): ==, hash and repr."""

import memq
from memq import Message, Reset

from conftest import REPLY_TIMEOUT_S


def a_message(**changes):
    fields = dict(topic="orders", msg="42", index=7, delivery="all", cache=None)
    fields.update(changes)
    return Message(**fields)


# ---- Message: == ---------------------------------------------------------------

def test_message_equals_a_message_with_the_same_fields():
    assert a_message() == a_message()


def test_message_differs_from_a_message_with_another_topic():
    assert a_message() != a_message(topic="other")


def test_message_differs_from_a_message_with_another_msg():
    assert a_message() != a_message(msg="43")


def test_message_differs_from_a_message_with_another_index():
    assert a_message() != a_message(index=8)


def test_message_differs_from_a_message_with_another_delivery():
    assert a_message() != a_message(delivery="one")


def test_message_differs_from_a_message_with_another_cache():
    assert a_message(cache=True) != a_message(cache=False)


def test_message_equals_none_is_false():
    assert (a_message() == None) is False  # noqa: E711 - the operator is what is tested


def test_message_not_equals_none_is_true():
    assert (a_message() != None) is True  # noqa: E711


def test_message_equals_an_int_is_false():
    assert (a_message() == 1) is False


def test_message_in_a_list_of_none_is_false():
    assert a_message() not in [None]


def test_message_eq_returns_notimplemented_for_another_type():
    assert a_message().__eq__(None) is NotImplemented


def test_message_ne_returns_notimplemented_for_another_type():
    assert a_message().__ne__("x") is NotImplemented


def test_message_equality_defers_to_the_other_operand():
    class EqualsEverything:
        def __eq__(self, other):
            return True

    assert a_message() == EqualsEverything()


# ---- Message: hash -------------------------------------------------------------

def test_equal_messages_have_equal_hashes():
    assert hash(a_message()) == hash(a_message())


def test_messages_deduplicate_in_a_set():
    assert len({a_message(), a_message(), a_message(index=8)}) == 2


# ---- Message: repr -------------------------------------------------------------

def test_message_repr_shows_every_compared_field():
    assert repr(a_message(cache=True)) == "Message(topic='orders', msg='42', index=7, delivery='all', cache=True)"


def test_message_repr_round_trips():
    message = a_message(msg="it's \"quoted\"\n\u00e9", delivery="one", cache=False)
    assert eval(repr(message), {"Message": Message}) == message


# ---- Message: construction -----------------------------------------------------

def test_constructed_message_raw_is_its_json_object():
    assert a_message(cache=True).as_dict() == {"command": "send", "topic": "orders", "msg": "42", "delivery": "all",
                                                "cache": True, "index": 7}


def test_message_constructor_rejects_an_unknown_delivery():
    try:
        a_message(delivery="some")
    except ValueError:
        return
    raise AssertionError("delivery='some' was accepted")


# ---- Message from the broker ---------------------------------------------------

def test_delivered_message_equals_the_message_built_from_its_fields(connect):
    client = connect()
    client.subscribe("orders")
    client.send("orders", "42")
    received = client.receive(timeout=REPLY_TIMEOUT_S)
    assert received == Message("orders", "42", received.index)


def test_delivered_message_repr_round_trips(connect):
    client = connect()
    client.subscribe("orders")
    client.send("orders", "x'\"y", cache=True)
    received = client.receive(timeout=REPLY_TIMEOUT_S)
    assert eval(repr(received), {"Message": Message}) == received


# ---- Reset: a value -------------------------------------------------------------

def test_reset_equals_a_reset_with_the_same_fields():
    assert Reset("orders", 19) == Reset("orders", 19)


def test_reset_differs_from_a_reset_of_another_topic():
    assert Reset("orders", 19) != Reset("other", 19)


def test_reset_differs_from_a_reset_with_another_last_index():
    assert Reset("orders", 19) != Reset("orders", 18)


def test_reset_equals_none_is_false():
    assert (Reset("orders", 19) == None) is False  # noqa: E711


def test_reset_eq_returns_notimplemented_for_another_type():
    assert Reset("orders", 19).__eq__(("orders", 19)) is NotImplemented


def test_reset_ne_returns_notimplemented_for_another_type():
    assert Reset("orders", 19).__ne__(None) is NotImplemented


def test_resets_deduplicate_in_a_set():
    assert len({Reset("orders", 19), Reset("orders", 19), Reset("orders", 4)}) == 2


def test_reset_repr_shows_every_field():
    assert repr(Reset("orders", 19)) == "Reset(topic='orders', last_index=19)"


def test_reset_repr_round_trips():
    reset = Reset("it's \"quoted\"\n\u00e9", -1)
    assert eval(repr(reset), {"Reset": Reset}) == reset


def test_reset_fields_are_read_only():
    reset = Reset("orders", 19)
    try:
        reset.last_index = 20
    except AttributeError:
        return
    raise AssertionError("last_index could be assigned")


# ---- Client: a resource, compared by identity ----------------------------------

def test_client_equals_itself(connect):
    client = connect()
    assert client == client


def test_two_clients_are_not_equal(connect):
    assert connect() != connect()


def test_client_equals_none_is_false(connect):
    assert (connect() == None) is False  # noqa: E711


def test_client_is_hashable_by_identity(connect):
    client = connect()
    assert {client: 1}[client] == 1


def test_client_repr_names_its_address(broker, connect):
    client = connect()
    assert repr(client) == f"<memq.Client host='127.0.0.1' port={broker.port} timeout={client.timeout!r}>"


# ---- errors --------------------------------------------------------------------

def test_broker_error_repr_round_trips():
    error = memq.BrokerError("refused", "Malformed json message")
    again = eval(repr(error), {"BrokerError": memq.BrokerError})
    assert (again.args, again.reason) == (error.args, error.reason)
