"""The learning-rate schedule's milestones as a sweep writes them ("40,60,80,100").
Standard library only: the task's pre-launch check parses them too."""
from __future__ import annotations

from typing import List


def parse_milestones(text: str) -> List[int]:
    """"40,60,80,100" → [40, 60, 80, 100]; "" → []; ValueError if not integers."""
    return [int(t) for t in str(text).replace(" ", "").split(",") if t]
