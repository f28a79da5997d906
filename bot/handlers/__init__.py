"""What Bosun reacts to: the per-event routers, composed. This list is the table of contents."""

from gidgethub import routing

from bot.handlers import installation, labels

router = routing.Router(
    labels.router,  # agent:<task> labels on issues and PRs queue and cancel tasks
    installation.router,  # installs and the repositories they grant
)
