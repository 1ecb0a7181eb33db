"""The fleet dashboard: server-rendered pages mounted by ``kcrash server`` (``router``).

No front-end build and nothing fetched from the internet: Jinja2 templates, one CSS file,
one small script (the theme switch) and SVG charts drawn on the server are all served by
kcrash itself, so the dashboard works on a network without internet access.
"""

from .views import router

__all__ = ["router"]
