"""Tuned (α, β) into a :class:`~inferno.system.System`'s profiles."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from ..system import System
from .measure import Theta, with_theta
from .tuner import PairKey

__all__ = ["with_tuned_profiles"]

logger = logging.getLogger(__name__)


def with_tuned_profiles(system: System, tuned: Mapping[PairKey, Theta]) -> System:
    """``system`` with the profile of each (model, accelerator) in ``tuned`` given its (α, β);
    the other profiles, and every other parameter, as they are."""
    if not tuned:
        return system
    profiles = tuple(
        replace(mp, profile=with_theta(mp.profile, tuned[(mp.model, mp.accelerator)]))
        if (mp.model, mp.accelerator) in tuned
        else mp
        for mp in system.profiles
    )
    return replace(system, profiles=profiles)
