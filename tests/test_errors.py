"""`one_line`: what the CLI shows of an error it turns into a UserError."""

from keras_geo.errors import one_line


def test_first_non_empty_line():
    assert one_line(ValueError("\n  bad file  \nmore detail")) == "bad file"


def test_type_name_when_the_message_is_empty():
    assert one_line(OSError()) == "OSError"


def test_long_messages_are_cut_to_the_limit():
    text = one_line(ValueError("x" * 500), limit=20)
    assert len(text) == 20 and text.endswith("...")


def test_a_library_error_is_the_value_error_a_keras_user_catches():
    """Library modules raise built-in types; only the CLI turns them into one line."""
    import pytest

    from keras_geo import losses
    from keras_geo.errors import UserError

    assert issubclass(UserError, ValueError)
    with pytest.raises(ValueError):
        losses.HaversineCrossEntropy(["France", "Japan"], alpha=-1.0)
    with pytest.raises(ValueError, match="Atlantis"):  # A UserError from `countries`.
        losses.HaversineCrossEntropy(["France", "Atlantis"])


def test_the_cli_prints_a_library_value_error_of_ours_as_one_line(tmp_path, capsys):
    from keras_geo.cli.main import main

    assert main(["evaluate", "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-geo: error: ") and "\n" not in err and "Traceback" not in err
