"""A visit report's card, as the feed and the notifications word it: the visit, when the staff
member arrived and left, and the checklist's answers (services.visit_reports keeps the card as
JSON with the report)."""

import json
from dataclasses import dataclass
from datetime import datetime

# A checklist answer, as the report form sends it and the card words it.
ANSWER_LABELS = {"yes": "Yes", "no": "No", "na": "n/a"}


@dataclass(frozen=True, slots=True)
class ReportCard:
    """What a visit report's card shows besides its note and photos, in the viewer's zone."""

    title: str
    arrived: str | None  # "12:02 PM"
    left: str | None
    duration: str | None  # "32 min", "1 h 5 min"
    checklist: tuple[tuple[str, str, str], ...]  # (item, answer, its label)

    @classmethod
    def of(cls, card_json: str, time_zone) -> "ReportCard":
        card = json.loads(card_json)
        started, ended = (datetime.fromisoformat(card[name]) if card.get(name) else None
                          for name in ("started_at", "ended_at"))
        return cls(
            card.get("title") or "Visit",
            _clock_time(started, time_zone), _clock_time(ended, time_zone),
            _duration(started, ended),
            tuple((item, answer, ANSWER_LABELS.get(answer, answer))
                  for item, answer in card.get("checklist", ())),
        )

    @property
    def times(self) -> str | None:
        """ "arrived 12:02 PM, left 12:34 PM (32 min)", or None before Start visit."""
        if not self.arrived:
            return None
        said = f"arrived {self.arrived}"
        if self.left:
            said += f", left {self.left}"
        return f"{said} ({self.duration})" if self.duration else said


def _clock_time(moment: datetime | None, time_zone) -> str | None:
    return moment.astimezone(time_zone).strftime("%-I:%M %p") if moment else None


def _duration(started: datetime | None, ended: datetime | None) -> str | None:
    if not (started and ended):
        return None
    minutes = max(round((ended - started).total_seconds() / 60), 0)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
