"""The migration modes, named once: settings, route tables and the pipeline read this.

    graphql           the translation answers (the default)
    legacy            plain reverse proxy to BRIDGE_LEGACY_URL (day zero)
    shadow            one side answers, the other is asked in the background and
                      the two answers are compared (BRIDGE_SHADOW_PRIMARY)
    graphql-fallback  the translation answers; the old API when it fails upstream

What each mode does is `pipeline.Pipeline.handle`.
"""

from __future__ import annotations

from typing import Literal, get_args

Mode = Literal["graphql", "legacy", "shadow", "graphql-fallback"]
MODES: tuple[str, ...] = get_args(Mode)
Primary = Literal["legacy", "graphql"]  # the side that answers the client in shadow mode
