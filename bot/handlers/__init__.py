"""What Bosun reacts to: the per-event routers, composed. This list is the table of contents."""

from gidgethub import routing

from bot.handlers import installation, issues

router = routing.Router(
    issues.router,  # agent:<task> labels queue and cancel tasks
    installation.router,  # installs and the repositories they grant
)
