"""All models, importable from one place."""

from portal.models.attachments import Attachment, AttachmentKind
from portal.models.audit import AuditEvent
from portal.models.businesses import Business
from portal.models.clients import Client, Pet, PreferredSitter
from portal.models.feeds import (
    FeedSummary,
    ReadMarker,
    ReadReceipt,
    RetiredComposer,
    UsedFormKey,
)
from portal.models.imports import PendingImport
from portal.models.inbound import InboundChannel, InboundMessage, InboundOutcome
from portal.models.messages import VIA_AUTOMATIC, VIA_REPORT, Feed, Message
from portal.models.notifications import (
    AccountEmail,
    AccountEmailKind,
    Channel,
    DeliveryStatus,
    Notification,
    PushSubscription,
)
from portal.models.phone_confirmations import PhoneConfirmation
from portal.models.saved_replies import SavedReply, SavedReplyFile
from portal.models.schedule import ScheduledService, ServiceSeries, ServiceStatus
from portal.models.scheduled import ScheduledMessage, ScheduledMessageFile
from portal.models.types import utcnow
from portal.models.users import LoginSession, MessageApproval, Role, User
from portal.models.visit_reports import VisitReport
from portal.models.workers import DeliveryWorker

__all__ = [
    "VIA_AUTOMATIC",
    "VIA_REPORT",
    "AccountEmail",
    "AccountEmailKind",
    "Attachment",
    "AttachmentKind",
    "AuditEvent",
    "Business",
    "Channel",
    "Client",
    "DeliveryStatus",
    "DeliveryWorker",
    "Feed",
    "FeedSummary",
    "InboundChannel",
    "InboundMessage",
    "InboundOutcome",
    "LoginSession",
    "Message",
    "MessageApproval",
    "Notification",
    "PendingImport",
    "Pet",
    "PhoneConfirmation",
    "PreferredSitter",
    "PushSubscription",
    "ReadMarker",
    "ReadReceipt",
    "RetiredComposer",
    "Role",
    "SavedReply",
    "SavedReplyFile",
    "ScheduledMessage",
    "ScheduledMessageFile",
    "ScheduledService",
    "ServiceSeries",
    "ServiceStatus",
    "UsedFormKey",
    "User",
    "VisitReport",
    "utcnow",
]
