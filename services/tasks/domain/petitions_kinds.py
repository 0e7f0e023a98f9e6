"""The classifications of a petition (its kind, its sender) and its states."""

from __future__ import annotations

from enum import Enum


class PetitionKind(Enum):
    FEEDBACK = "FEEDBACK"  # phản ánh, kiến nghị
    COMPLAINT = "COMPLAINT"  # khiếu nại (lần đầu)
    DENUNCIATION = "DENUNCIATION"  # tố cáo


class SenderKind(Enum):
    CITIZEN = "CITIZEN"
    BUSINESS = "BUSINESS"
    PRESS = "PRESS"
    FATHERLAND_FRONT = "FATHERLAND_FRONT"
    AGENCY = "AGENCY"


class PetitionState(Enum):
    RECEIVED = "RECEIVED"
    IN_PROGRESS = "IN_PROGRESS"
    ANSWERED = "ANSWERED"
    DECLINED = "DECLINED"
