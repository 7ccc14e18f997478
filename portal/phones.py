"""Phone numbers as people write them ("(555) 010-2030") and as Twilio speaks them (E.164)."""

import re

_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|x)\s*\d+\s*$")


def e164(text: str | None) -> str | None:
    """A phone number as E.164 ("+15550102030"): digits only, a leading + or 00 kept as the
    country code, and +1 for a 10-digit (US) number; an extension dropped. None when it cannot
    be a number. A text's sender and the people's phones are compared through here, and
    texts are sent to what it gives."""
    if not text:
        return None
    text = _EXTENSION.sub("", text.strip())
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        pass
    elif digits.startswith("00"):
        digits = digits[2:]
    elif len(digits) == 10:
        digits = "1" + digits
    elif not (len(digits) == 11 and digits.startswith("1")):
        return None
    return f"+{digits}" if 8 <= len(digits) <= 15 else None


def readable(number: str | None) -> str:
    """A number as people read it: "+1 312-555-0142" for a North American one, others in
    E.164, and what is not a number as it was written."""
    if not number:
        return ""
    number = e164(number) or number
    if len(number) == 12 and number.startswith("+1") and number[1:].isdigit():
        return f"+1 {number[2:5]}-{number[5:8]}-{number[8:]}"
    return number
