"""cli.py: range-checked flags and one-line errors with exit code 2."""
import pytest

import cli


def parser() -> cli.Parser:
    p = cli.Parser("demo", prog="demo.py")
    p.add_argument("--count", type=cli.number(int, 1), default=16, help="a count")
    p.add_argument("--share", type=cli.number(float, 0, 1, low_open=True), default=0.5, help="a share")
    return p


def test_values_in_range_parse():
    args = parser().parse_args(["--count", "1", "--share", "1"])
    assert (args.count, args.share) == (1, 1.0)


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "demo.py: argument --count: 0 is not allowed: must be an integer >= 1"),
    (["--count", "2.5"], "demo.py: argument --count: '2.5' is not an integer"),
    (["--share", "0"], "demo.py: argument --share: 0 is not allowed: must be a number > 0 and <= 1"),
    (["--share", "nan"], "demo.py: argument --share: nan is not allowed: must be a number > 0 and <= 1"),
])
def test_out_of_range_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        parser().parse_args(argv)
    assert stop.value.code == cli.BAD_INPUT
    assert capsys.readouterr().err == message + "\n"


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "a count (default: 16)" in out and "a share (default: 0.5)" in out
