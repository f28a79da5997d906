"""Only exact slash commands act; text that mentions one, quotes one or garbles one does not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.core.commands import Command, Malformed, Verb, help_text, parse_comment


def test_exact_commands_parse() -> None:
    """Each command works alone on its line, with surrounding text on other lines."""
    assert parse_comment("/bosun run fix-bug") == Command(Verb.RUN, "fix-bug")
    assert parse_comment("Thanks!\n\n  /bosun retry  \nmore text") == Command(Verb.RETRY)
    for verb in ("cancel", "status", "ok-to-run", "help"):
        assert parse_comment(f"/bosun {verb}") == Command(Verb(verb))


def test_mentions_quotes_and_code_do_nothing() -> None:
    """A command inside a sentence, a quote or a code block is not a command."""
    for body in (
        "please do /bosun run fix-bug when you can",
        "> /bosun run fix-bug",
        "```\n/bosun run fix-bug\n```",
        "~~~\n/bosun cancel\n~~~",
        "`/bosun run fix-bug`",
        "/bosunrun fix-bug",
        "/BOSUN run fix-bug",
        "",
    ):
        assert parse_comment(body) is None, body


def test_garbled_commands_get_help() -> None:
    """A line that starts like a command but is wrong gets a reason and the list of commands."""
    assert parse_comment("/bosun") == Malformed("a command needs a verb")
    assert parse_comment("/bosun launch rockets") == Malformed("unknown command")
    assert parse_comment("/bosun run") == Malformed("`/bosun run` takes one task name")
    assert parse_comment("/bosun run Fix_Bug") == Malformed("`/bosun run` takes one task name")
    assert parse_comment("/bosun cancel now") == Malformed("`/bosun cancel` takes no argument")
    text = help_text("unknown command")
    assert text.startswith("Bosun did not understand that: unknown command.")
    assert "- `/bosun run <task>`" in text and "- `/bosun ok-to-run`" in text


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_and_rarely_acts(body: str) -> None:
    """Any comment text parses without error; a command comes only from a `/bosun` line."""
    parsed = parse_comment(body)
    if isinstance(parsed, Command):
        assert any(line.strip().startswith("/bosun ") for line in body.splitlines())


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=40)),
    st.sampled_from([v.value for v in Verb if v is not Verb.RUN]),
)
def test_a_command_line_among_noise_is_found(noise: list[str], verb: str) -> None:
    """Surrounding lines that are not commands never hide or change a command."""
    lines = [line for line in noise if "/bosun" not in line and "`" not in line and "~" not in line]
    body = "\n".join([*lines, f"/bosun {verb}"])
    assert parse_comment(body) == Command(Verb(verb))
