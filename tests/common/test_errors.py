"""The core names its parameters; the command line shows them as the flags a user types."""

from vizcli.common.errors import BadInput, Interrupted, mentions_as_flags, one_line, shown_value

FLAGS = {"resume": "--resume", "on_error": "--on-error", "shard_format": "--shard-format", "id_column": "--id-column",
         "output": "-o", "images": ""}


def test_parameter_mentions_become_flags():
    assert mentions_as_flags("rerun with resume=True", FLAGS) == "rerun with --resume"
    assert mentions_as_flags("(on_error=stop; finished units are kept)", FLAGS) == "(--on-error stop; finished units are kept)"
    assert mentions_as_flags("than shard_format='npz'; use that", FLAGS) == "than --shard-format npz; use that"
    assert mentions_as_flags("check id_column=COLUMN", FLAGS) == "check --id-column COLUMN"
    assert mentions_as_flags("glob='*.png' matched nothing", {"glob": "--glob"}) == "--glob '*.png' matched nothing"  # quoted for a shell


def test_unknown_names_and_comparisons_stay_as_written():
    assert mentions_as_flags("x=1 and a==b", FLAGS) == "x=1 and a==b"
    assert mentions_as_flags("resume=Trueish", FLAGS) == "--resume Trueish"


def test_an_error_names_its_flag_or_a_positional_value():
    assert BadInput("no such folder", parameter="output", value="out dir").for_command_line(FLAGS) == "-o 'out dir': no such folder"
    assert BadInput("not an image", parameter="images", value="a.png").for_command_line(FLAGS) == "a.png: not an image"
    assert BadInput("add resume=True", parameter="output").for_command_line(FLAGS) == "-o: add --resume"
    assert str(BadInput("bad", parameter="batch_size", value=0)) == "batch_size=0: bad"  # Python callers see parameter names


def test_values_are_shown_as_typed_and_lines_stay_single():
    assert (shown_value(True), shown_value(None), shown_value("a b")) == ("true", "none", "'a b'")
    assert one_line("two\nlines\x1b[31m") == "two lines\\x1b[31m"


def test_an_interruption_names_the_resume_flag():
    import signal

    stopped = Interrupted(signal.SIGTERM, "3 finished units are kept in out.parts; rerun with resume=True to finish")
    assert stopped.exit_code == 143
    assert stopped.for_command_line(FLAGS) == "interrupted by SIGTERM; 3 finished units are kept in out.parts; rerun with --resume to finish"
