"""Money (R23): ``Decimal`` end to end, rounded half-up to the currency's minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from functions.core.errors import BadRequest

# ISO 4217 codes the platform bills in, with their minor units.
MINOR_UNITS: dict[str, int] = {
    "AUD": 2,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "INR": 2,
    "JPY": 0,
    "KRW": 0,
    "MXN": 2,
    "NOK": 2,
    "NZD": 2,
    "PLN": 2,
    "RON": 2,
    "SEK": 2,
    "SGD": 2,
    "TRY": 2,
    "USD": 2,
    "ZAR": 2,
    "BHD": 3,
    "KWD": 3,
}

MAX_AMOUNT = Decimal("1000000000")


def minor_unit(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise BadRequest(f"currency {currency!r} is not supported", field="currency") from None


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit (R23)."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def parse_price(value: object, currency: str, *, field: str) -> Decimal:
    """A price as given by a client: a decimal string (or int), ≥ 0, at most the currency's
    minor-unit digits, below ``MAX_AMOUNT``. Floats are refused: money is never a float."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise BadRequest(f'{field} must be a decimal string such as "12.30"', field=field)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadRequest(f"{field} is not a decimal number", field=field) from None
    if not amount.is_finite():
        raise BadRequest(f"{field} must be a finite decimal number", field=field)
    if amount < 0:
        raise BadRequest(f"{field} must not be negative", field=field, code="out_of_range")
    if amount >= MAX_AMOUNT:
        raise BadRequest(f"{field} must be below {MAX_AMOUNT}", field=field, code="out_of_range")
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int):  # a NaN or an infinity: refused above already
        raise BadRequest(f"{field} must be a finite decimal number", field=field)
    if -exponent > minor_unit(currency):
        raise BadRequest(
            f"{field} has more decimals than {currency} allows ({minor_unit(currency)})",
            field=field,
        )
    return round_money(amount, currency)


def format_money(amount: Decimal, currency: str) -> str:
    """The JSON form of an amount: a string with exactly the minor-unit digits (SPEC §9)."""
    return str(round_money(amount, currency))
