"""`one_line`: what the CLI shows of an error it turns into a UserError."""

from keras_geo.errors import one_line


def test_first_non_empty_line():
    assert one_line(ValueError("\n  bad file  \nmore detail")) == "bad file"


def test_type_name_when_the_message_is_empty():
    assert one_line(OSError()) == "OSError"


def test_long_messages_are_cut_to_the_limit():
    text = one_line(ValueError("x" * 500), limit=20)
    assert len(text) == 20 and text.endswith("...")
