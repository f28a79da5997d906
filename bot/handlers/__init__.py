"""What Bosun reacts to: the per-event routers, composed. This list is the table of contents."""

from gidgethub import routing

from bot.handlers import comments, installation, labels, merge, policy_check, pulls, push, reviews

router = routing.Router(
    labels.router,  # agent:<task> labels on issues and PRs queue and cancel tasks
    comments.router,  # exact `/bosun` commands from permitted people
    pulls.router,  # pull requests merged or closed, issues closed
    reviews.router,  # reviews of agent PRs: changes requested re-run the agent; approvals
    merge.router,  # auto-merge of approved, green agent PRs; their branches when closed
    policy_check.router,  # `bosun/policy` on pull requests that change `.bosun/`
    push.router,  # `.bosun/` pushed to a default branch: accepted, or refused and kept
    installation.router,  # installs and the repositories they grant
)
