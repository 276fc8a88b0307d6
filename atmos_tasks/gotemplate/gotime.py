"""Go's time.Time as templates see it: printing, Format with Go layouts ("2006-01-02"), zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from .funcs import GoFunc

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Layout elements, longest first where one is a prefix of another.
_CHUNKS = [
    "January",
    "Monday",
    "Z07:00:00",
    "-07:00:00",
    "Z070000",
    "-070000",
    "Z07:00",
    "-07:00",
    "Z0700",
    "-0700",
    "2006",
    "Jan",
    "Mon",
    "MST",
    "__2",
    "002",
    "Z07",
    "-07",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "15",
    "PM",
    "pm",
    "_2",
    "1",
    "2",
    "3",
    "4",
    "5",
]


def load_zone(name: str) -> tzinfo | None:
    """time.LoadLocation: "UTC", "Local", or an IANA name (None when unknown)."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return datetime.now().astimezone().tzinfo
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:
        return None


def _zone_abbreviation(moment: datetime) -> str:
    name = moment.tzname() or ""
    offset = moment.utcoffset() or timedelta(0)
    if name == "UTC" and offset == timedelta(0):
        return "UTC"
    if not name or name.startswith(("UTC", "GMT+", "GMT-", "+", "-")):
        return _offset(offset, "", False, False)
    return name


def _offset(offset: timedelta, sep: str, seconds: bool, short: bool) -> str:
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}"
    if short:
        return text
    text += f"{sep}{minutes:02d}"
    if seconds:
        text += f"{sep}{secs:02d}"
    return text


def _fraction(moment: datetime, digits: int, trim: bool) -> str:
    nanos = f"{moment.microsecond:06d}000"[:digits]
    if trim:
        nanos = nanos.rstrip("0")
        return ("." + nanos) if nanos else ""
    return "." + nanos


def format_time(moment: datetime, layout: str) -> str:
    """Time.Format(layout) for Go's reference layout `Mon Jan 2 15:04:05 MST 2006`."""
    out: list[str] = []
    i = 0
    while i < len(layout):
        # fractional seconds: .000 / ,000 / .999 / ,999 (after a seconds field or anywhere)
        if layout[i] in ".," and i + 1 < len(layout) and layout[i + 1] in "09":
            digit = layout[i + 1]
            j = i + 1
            while j < len(layout) and layout[j] == digit:
                j += 1
            if j >= len(layout) or not layout[j].isdigit():
                text = _fraction(moment, j - i - 1, digit == "9")
                out.append(text.replace(".", layout[i], 1) if text else "")
                i = j
                continue
        for chunk in _CHUNKS:
            if layout.startswith(chunk, i):
                if chunk in ("Jan", "Mon") and layout[i + 3 : i + 4].islower():
                    continue  # "Janet", "Month": words, not layout elements
                out.append(_element(moment, chunk))
                i += len(chunk)
                break
        else:
            out.append(layout[i])
            i += 1
    return "".join(out)


def _element(moment: datetime, chunk: str) -> str:
    offset = moment.utcoffset() or timedelta(0)
    if chunk.startswith("Z") and offset == timedelta(0):
        return "Z"
    hour12 = moment.hour % 12 or 12
    table: dict[str, Any] = {
        "January": lambda: _MONTHS[moment.month - 1],
        "Jan": lambda: _MONTHS[moment.month - 1][:3],
        "Monday": lambda: _DAYS[moment.weekday()],
        "Mon": lambda: _DAYS[moment.weekday()][:3],
        "MST": lambda: _zone_abbreviation(moment),
        "2006": lambda: f"{moment.year:04d}",
        "06": lambda: f"{moment.year % 100:02d}",
        "01": lambda: f"{moment.month:02d}",
        "1": lambda: str(moment.month),
        "02": lambda: f"{moment.day:02d}",
        "_2": lambda: f"{moment.day:2d}",
        "2": lambda: str(moment.day),
        "002": lambda: f"{moment.timetuple().tm_yday:03d}",
        "__2": lambda: f"{moment.timetuple().tm_yday:3d}",
        "15": lambda: f"{moment.hour:02d}",
        "03": lambda: f"{hour12:02d}",
        "3": lambda: str(hour12),
        "04": lambda: f"{moment.minute:02d}",
        "4": lambda: str(moment.minute),
        "05": lambda: f"{moment.second:02d}",
        "5": lambda: str(moment.second),
        "PM": lambda: "PM" if moment.hour >= 12 else "AM",
        "pm": lambda: "pm" if moment.hour >= 12 else "am",
        "-0700": lambda: _offset(offset, "", False, False),
        "Z0700": lambda: _offset(offset, "", False, False),
        "-07:00": lambda: _offset(offset, ":", False, False),
        "Z07:00": lambda: _offset(offset, ":", False, False),
        "-07": lambda: _offset(offset, "", False, True),
        "Z07": lambda: _offset(offset, "", False, True),
        "-070000": lambda: _offset(offset, "", True, False),
        "Z070000": lambda: _offset(offset, "", True, False),
        "-07:00:00": lambda: _offset(offset, ":", True, False),
        "Z07:00:00": lambda: _offset(offset, ":", True, False),
    }
    return str(table[chunk]())


class GoTime:
    """A time.Time value: prints like Go's (`2024-01-02 15:04:05 +0000 UTC`), compares by instant."""

    go_type = "time.Time"
    __slots__ = ("moment",)

    def __init__(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            moment = moment.astimezone()
        self.moment = moment

    def go_string(self) -> str:
        return format_time(self.moment, "2006-01-02 15:04:05.999999999 -0700 MST")

    def go_json(self) -> str:
        return format_time(self.moment, "2006-01-02T15:04:05.999999999Z07:00")

    def __str__(self) -> str:
        return self.go_string()

    def __repr__(self) -> str:
        return f"GoTime({self.moment.isoformat()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoTime) and self.moment == other.moment

    def __hash__(self) -> int:
        return hash(self.moment)

    def in_zone(self, zone: tzinfo) -> GoTime:
        return GoTime(self.moment.astimezone(zone))

    @property
    def methods(self) -> dict[str, GoFunc]:
        moment = self.moment
        return {
            "Format": GoFunc(lambda layout: format_time(moment, layout), ("string",)),
            "Unix": GoFunc(lambda: int(moment.timestamp()), ()),
            "UTC": GoFunc(lambda: GoTime(moment.astimezone(UTC)), ()),
            "Local": GoFunc(lambda: GoTime(moment.astimezone()), ()),
            "Year": GoFunc(lambda: moment.year, ()),
            "YearDay": GoFunc(lambda: moment.timetuple().tm_yday, ()),
            "Day": GoFunc(lambda: moment.day, ()),
            "Hour": GoFunc(lambda: moment.hour, ()),
            "Minute": GoFunc(lambda: moment.minute, ()),
            "Second": GoFunc(lambda: moment.second, ()),
            "String": GoFunc(lambda: self.go_string(), ()),
        }


def fixed_zone(hours: int) -> tzinfo:
    return timezone(timedelta(hours=hours))
