"""vizcli verify on embed outputs: recompute sampled rows from the kept text or the recorded input file."""

from tests.checks import one_error_line, tampered_copy

LINES = "a cat sits on the mat\na dog lies on the rug\nthe sun is warm\nrain falls in spain\nbirds sing\n"


def test_an_output_verifies_from_its_input_file_and_from_kept_text(invoke, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LINES)
    plain, kept = tmp_path / "plain.parquet", f"{tmp_path}/kept/"
    assert invoke("embed", "--file", corpus, "-p", "mean,pooler", "-o", plain, "--quiet").exit_code == 0
    assert invoke("embed", "-o", kept, "--keep-text", "--quiet", input=LINES).exit_code == 0  # stdin: only the kept text
    result = invoke("verify", plain, "--sample", "3")
    assert result.exit_code == 0, result.stderr
    assert "recomputed 3 rows of 3 sampled items" in result.stdout and "mean: largest difference" in result.stdout
    assert invoke("verify", kept).exit_code == 0
    corpus.write_text("")
    message = one_error_line(invoke("verify", plain), code=1)
    assert "not in the recorded input" in message and "changed since the run" in message


def test_a_changed_vector_and_an_int8_output(invoke, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LINES)
    out = tmp_path / "v.parquet"
    assert invoke("embed", "--file", corpus, "-o", out, "--quiet").exit_code == 0
    tampered_copy(out, tmp_path / "bad.parquet", "mean", row=1, delta=0.01)  # the default: the model's own pooling
    assert "not reproduced" in one_error_line(invoke("verify", tmp_path / "bad.parquet", "--sample", "5"), code=1)
    quantized = tmp_path / "q.parquet"
    assert invoke("embed", "--file", corpus, "-o", quantized, "--precision", "int8", "--quiet").exit_code == 0
    result = invoke("verify", quantized)
    assert result.exit_code == 0 and "(tolerance 1)" in result.stdout, result.stdout


def test_stdin_without_kept_text_cannot_be_verified(invoke, tmp_path):
    out = tmp_path / "s.parquet"
    assert invoke("embed", "-o", out, "--quiet", input=LINES).exit_code == 0
    assert "--keep-text" in one_error_line(invoke("verify", out))


def test_the_recorded_settings_read_back_equal_so_a_resume_is_accepted(invoke, tmp_path):
    """The settings are stored as JSON (poolings as a list): a resumed run compares them as read back."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LINES)
    folder = f"{tmp_path}/shards/"
    assert invoke("embed", "--file", corpus, "-p", "mean,cls", "-o", folder, "--quiet").exit_code == 0
    again = invoke("embed", "--file", corpus, "-p", "mean,cls", "-o", folder, "--resume")
    assert again.exit_code == 0 and "5 texts already embedded there by an earlier run were skipped" in again.stderr, again.stderr
