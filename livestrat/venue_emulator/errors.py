"""Binance's error answers: an HTTP status with ``{"code": ..., "msg": ...}``, as errors.md documents them.

Every refusal the emulator gives goes through :class:`BinanceError`, so REST and the WebSocket API
answer the same code and message for the same fault (the WebSocket API puts the HTTP status in
``status`` and the pair in ``error``). Codes and messages are copied from Binance's spot API docs,
``errors.md`` ("Error codes for Binance"), and the messages for -1013/-2010/-2011 from its tables
"Filter failures" and "Messages for -1010 ERROR_MSG_RECEIVED, -2010 NEW_ORDER_REJECTED, -2011
CANCEL_REJECTED".
"""

from __future__ import annotations


class BinanceError(Exception):
    """A refusal as Binance answers it; ``http_status`` is the HTTP status (and the WS API ``status``)."""

    def __init__(self, http_status: int, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.http_status = http_status
        self.code = code
        self.msg = msg

    def body(self) -> dict[str, int | str]:
        return {"code": self.code, "msg": self.msg}


# errors.md "10xx - General Server or Network issues"
def unknown() -> BinanceError:
    return BinanceError(500, -1000, "An unknown error occurred while processing the request.")


def too_many_requests(limit: str) -> BinanceError:
    return BinanceError(
        429,
        -1003,
        f"Too much request weight used; current limit is {limit}. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    )


def ip_banned(until_ms: int) -> BinanceError:
    return BinanceError(
        418,
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    )


def unsupported_operation() -> BinanceError:
    return BinanceError(400, -1020, "This operation is not supported.")


def timestamp_outside_recv_window() -> BinanceError:
    return BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> BinanceError:
    return BinanceError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def invalid_signature() -> BinanceError:
    return BinanceError(400, -1022, "Signature for this request is not valid.")


# errors.md "11xx - Request issues"
def mandatory_param(name: str) -> BinanceError:
    return BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def one_of_params(first: str, second: str) -> BinanceError:
    return BinanceError(400, -1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def param_too_large(name: str, maximum: int) -> BinanceError:
    return BinanceError(400, -1102, f"'{name}' contains unexpected value. Cannot be greater than {maximum}.")


def bad_precision(name: str) -> BinanceError:
    return BinanceError(400, -1111, f"Parameter '{name}' has too much precision.")


def tif_not_required() -> BinanceError:
    return BinanceError(400, -1114, "TimeInForce parameter sent when not required.")


def invalid_tif() -> BinanceError:
    return BinanceError(400, -1115, "Invalid timeInForce.")


def invalid_order_type() -> BinanceError:
    return BinanceError(400, -1116, "Invalid orderType.")


def invalid_side() -> BinanceError:
    return BinanceError(400, -1117, "Invalid side.")


def bad_symbol() -> BinanceError:
    return BinanceError(400, -1121, "Invalid symbol.")


def more_than_24_hours() -> BinanceError:
    return BinanceError(400, -1127, "More than 24 hours between startTime and endTime.")


def invalid_parameter(name: str) -> BinanceError:
    return BinanceError(400, -1130, f"Data sent for parameter '{name}' is not valid.")


# errors.md "Filter failures": sent with -1013 INVALID_MESSAGE
def filter_failure(name: str) -> BinanceError:
    return BinanceError(400, -1013, f"Filter failure: {name}")


# errors.md "20xx - Processing Issues" and the -2010/-2011 message table
def new_order_rejected(msg: str) -> BinanceError:
    return BinanceError(400, -2010, msg)


INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
DUPLICATE_ORDER = "Duplicate order sent."
WOULD_TAKE = "Order would immediately match and take."


def unknown_order_on_cancel() -> BinanceError:
    return BinanceError(400, -2011, "Unknown order sent.")


def no_such_order() -> BinanceError:
    return BinanceError(400, -2013, "Order does not exist.")


def bad_api_key_format() -> BinanceError:
    return BinanceError(401, -2014, "API-key format invalid.")


def rejected_api_key() -> BinanceError:
    return BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")


def subscription_active() -> BinanceError:
    return BinanceError(400, -2035, "User Data Stream subscription already active.")


def subscription_inactive() -> BinanceError:
    return BinanceError(400, -2036, "User Data Stream subscription not active.")


def server_error(status: int) -> BinanceError:
    """A 5xx as Binance's front end gives it: execution status unknown (rest-api.md "HTTP Return Codes")."""
    return BinanceError(status, -1001, "Internal error; unable to process your request. Please try again.")
