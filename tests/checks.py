"""Checks shared by the test modules: the one-line error form, parsers that give a value or BadInput."""

from hypothesis import HealthCheck, settings

from tests.conftest import EXAMPLES
from vizcli.common.errors import BadInput

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def either_value_or_bad_input(function, *args):
    try:
        function(*args)
    except BadInput as error:
        assert "\n" not in str(error), str(error)
        return str(error)
    return None


NAMES_THE_INPUT = ("--", "box ", "image ", "line ", "argument ", "-o ", "writing ", "no image", "no boxes", "no input", "No such command")


SAYS_THE_FIX = ("use ", "give ", "check", "choose", "fix", "remove", "shorten", "drop", "raise", "put ", "pass ", "write ",
                "install", "save ", "create", "see '", "did you mean", "e.g.", "at least", "at most", "must be", "needs", "need ",
                "only if", "free space", "between", "required", "not in", "starts with")


def check_form(stderr: str) -> None:
    assert stderr.startswith("Error: ") and stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert any(marker in stderr for marker in NAMES_THE_INPUT), f"does not name the input: {stderr}"
    assert any(marker in stderr.lower() for marker in SAYS_THE_FIX), f"does not say how to fix it: {stderr}"


CHELSEA = EXAMPLES / "chelsea.png"


def one_error_line(result, code=2):
    assert result.exit_code == code, (result.exit_code, result.stdout[-300:], result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def random_image(path, size, seed):
    """A seeded random RGB image of ``size`` (width, height) saved at ``path`` (its folder made)."""
    import numpy as np
    from PIL import Image

    generator = np.random.default_rng(seed)
    array = generator.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def tampered_copy(source, target, column, row=0, delta=0.5):
    """``source`` Parquet rewritten to ``target`` with one value of ``column`` (a vector column) changed
    by ``delta``, its metadata kept: what a damaged or hand-edited output looks like to verify."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    values = table.column(column).to_pylist()
    vector = np.asarray(values[row], dtype=np.float64)
    vector[0] += delta
    values[row] = vector.astype(type(values[row][0])).tolist() if isinstance(values[row][0], int) else vector.tolist()
    changed = table.set_column(table.schema.get_field_index(column), table.schema.field(column),
                               pa.array(values, type=table.schema.field(column).type))
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), target)
