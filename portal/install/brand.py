"""Whose portal this is: the business's name and logo, where pages, emails and the installed
app show them; "Client Portal" and the paw when there is neither."""

import hashlib
from dataclasses import dataclass

from flask import g, has_request_context, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.extensions import db
from portal.models import Business
from portal.notifications.links import external_url

PORTAL_NAME = "Client Portal"  # nobody logged in on a portal of several businesses


@dataclass(frozen=True)
class Brand:
    name: str
    business: Business | None

    @property
    def logo_url(self) -> str | None:
        return logo_url(self.business) if self.business else None


def brand() -> Brand:
    """The logged-in person's business; logged out, the business when the portal serves only
    one (its login page is theirs), else the portal's own name."""
    if current_user.is_authenticated:
        return Brand(current_user.business.name, current_user.business)
    if "brand" not in g:
        only = db.session.scalars(select(Business).order_by(Business.id).limit(2)).all()
        g.brand = Brand(only[0].name, only[0]) if len(only) == 1 else Brand(PORTAL_NAME, None)
    return g.brand


def version(business: Business) -> str:
    """Changes with the logo: its URLs may be kept by browsers for as long as it lasts."""
    return hashlib.blake2b(business.logo_key.encode(), digest_size=6).hexdigest()


def logo_url(business: Business, *, external: bool = False) -> str | None:
    """Where the business's logo is served, or None without one. `external`: a whole URL, for
    emails (built without a request: the worker has none)."""
    if not business.logo_key:
        return None
    values = {"business_id": business.id, "v": version(business)}
    if has_request_context() and not external:
        return url_for("install.logo", **values)
    return external_url("install.logo", **values)


def icon_url(name: str) -> str:
    """An icon of the installed app: drawn from the business's logo when it has one."""
    business = brand().business
    if business is not None and business.logo_key:
        return url_for("install.business_icon", business_id=business.id, name=name,
                       v=version(business))
    return url_for("install.icon", name=name)
